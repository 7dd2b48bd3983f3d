"""One home for onnxruntime settings: execution providers and session options, for every
ONNX model veil runs (the detectors, the monocular depth models).

``--device`` picks the providers (:func:`select_providers`); :func:`session_options` sets
what every session shares: full graph optimisation, quiet logs, optional thread count, and
idle threads that sleep instead of spinning (a video run encodes on another thread while
inference waits; spinning took those cores: docs/benchmarks.md §4).
"""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["PROVIDERS", "select_providers", "session_options"]

#: device setting -> onnxruntime execution providers, in order of preference.
PROVIDERS: dict[str, list[str]] = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "openvino": ["OpenVINOExecutionProvider", "CPUExecutionProvider"],
}
_AUTO_ORDER = ["CUDAExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]


def select_providers(device: str) -> list[str]:
    """Providers for a device setting; ``auto`` picks the best one installed."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if device == "auto":
        return [p for p in _AUTO_ORDER if p in available]
    wanted = PROVIDERS.get(device)
    if wanted is None:
        raise ConfigError(f"unknown device {device!r}; choose auto, {', '.join(PROVIDERS)}")
    if wanted[0] not in available:
        extra = {"cuda": "onnxruntime-gpu", "tensorrt": "onnxruntime-gpu", "openvino": "onnxruntime-openvino"}
        raise ConfigError(
            f"device {device!r} needs {wanted[0]}, which this onnxruntime lacks "
            f"(install {extra.get(device, 'onnxruntime')}); available: {', '.join(sorted(available))}"
        )
    return [p for p in wanted if p in available]


def session_options(threads: int = 0):
    """``onnxruntime.SessionOptions`` for a veil session; ``threads`` 0: onnxruntime's default."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts
