"""Loading ONNX detectors into onnxruntime: graph fixes and execution providers.

Exported face detectors often come with fixed input sizes and with their weights listed as
graph inputs (old PyTorch exporters did this). Both cost speed: a fixed size forces a resize
to the export shape, and initializers-as-inputs stop onnxruntime from constant-folding and
fusing BatchNorm into convolutions (measured on CenterFace: about 2x slower, same outputs).
:func:`load_session` fixes both before creating the session, with the providers and session
options every veil model shares (:mod:`veil.models.runtime`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from ..errors import ModelError
from ..models.runtime import PROVIDERS, select_providers, session_options

log = logging.getLogger("veil")

__all__ = ["load_session", "fix_graph", "select_providers", "PROVIDERS"]

def fix_graph(model, dynamic_inputs: dict[str, Sequence[str | int]], dynamic_outputs: dict[str, Sequence[str | int]]):
    """Make the named inputs/outputs dynamic and drop initializers from the graph inputs."""
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    init_names = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in init_names]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    ins = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outs = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    ins.update({name: list(dims) for name, dims in dynamic_inputs.items()})
    outs.update({name: list(dims) for name, dims in dynamic_outputs.items()})
    return update_inputs_outputs_dims(model, ins, outs)


def load_session(
    path: Path,
    device: str = "auto",
    dynamic_inputs: dict | None = None,
    dynamic_outputs: dict | None = None,
    threads: int = 0,
):
    """Create an onnxruntime session for ``path`` with the graph fixes applied."""
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelError(f"cannot read ONNX model {path}: {exc.__class__.__name__}") from None
    if dynamic_inputs or dynamic_outputs:
        model = fix_graph(model, dynamic_inputs or {}, dynamic_outputs or {})
    # idle threads sleep instead of spinning (OTB Boy, 2 cores: -1.9 CPU-s of 11.1, end to end
    # -7 %; a folder of photos: -15 % CPU, +4 % time; docs/benchmarks.md §4)
    opts = session_options(threads)
    providers = select_providers(device)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=providers)
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None
    log.debug("loaded %s on %s", path.name, sess.get_providers()[0])
    return sess
