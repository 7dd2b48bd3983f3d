"""Face detectors behind one small protocol, looked up by name."""

from __future__ import annotations

from ..config import DetectConfig
from ..errors import ConfigError
from ..models import resolve_model
from .base import Detector, GridDetector
from .centerface import CenterFace
from .onnx_runtime import load_session
from .yunet import YuNet

__all__ = ["Detector", "GridDetector", "CenterFace", "YuNet", "DETECTORS", "build_detector"]

#: name -> GridDetector subclass. Add a detector by adding a class here.
DETECTORS: dict[str, type[GridDetector]] = {"centerface": CenterFace, "yunet": YuNet}


def build_detector(cfg: DetectConfig, batch: int = 4) -> GridDetector:
    """Load the configured detector (model file verified by sha256).

    With ``cfg.precision == "int8"`` the session runs the int8 copy of the model (made once
    and cached, see :mod:`veil.detect.quantize`); ``model_sha256`` is then the int8 file's,
    ``source_model_sha256`` the verified source model's, and ``precision`` says which.
    """
    cls = DETECTORS.get(cfg.detector)
    if cls is None:
        raise ConfigError(f"unknown detector {cfg.detector!r}; choose one of {', '.join(DETECTORS)}")
    path, digest = resolve_model(cfg.detector, cfg.model_path)
    dyn_in, dyn_out = getattr(cls, "dynamic_inputs", None), getattr(cls, "dynamic_outputs", None)
    if cfg.precision == "int8":
        from .quantize import int8_model

        with int8_model(path, digest, dyn_in or {}, dyn_out or {}, name=cfg.detector) as q:
            session = load_session(q.path, cfg.device, dyn_in, dyn_out)
        model_sha = q.sha256
    else:
        session = load_session(path, cfg.device, dyn_in, dyn_out)
        model_sha = digest
    det = cls(session, model_sha, max_side=cfg.max_side, tile=cfg.tile, tile_size=cfg.tile_size,
              nms_iou=cfg.nms_iou, batch=batch)
    det.precision = cfg.precision
    det.source_model_sha256 = digest
    if cfg.scales or cfg.flip or cfg.low_light or cfg.rotations:
        from .augment import AugmentedDetector
        from .lowlight import LowLight

        return AugmentedDetector(det, cfg.scales, cfg.flip, LowLight(cfg.low_light_level, bright_end=cfg.low_light_bright_end) if cfg.low_light else None,  # type: ignore[return-value]
                                 rotations=cfg.rotations)
    return det
