"""Face detectors behind one small protocol, looked up by name."""

from __future__ import annotations

from typing import Callable

from ..config import DetectConfig
from ..errors import ConfigError
from ..models import resolve_model
from .base import Detector, GridDetector
from .centerface import CenterFace
from .onnx_runtime import load_session

__all__ = ["Detector", "GridDetector", "CenterFace", "DETECTORS", "build_detector"]

#: name -> GridDetector subclass. Add a detector by adding a class here.
DETECTORS: dict[str, type[GridDetector]] = {"centerface": CenterFace}


def build_detector(cfg: DetectConfig, batch: int = 4) -> GridDetector:
    """Load the configured detector (model file verified by sha256)."""
    cls = DETECTORS.get(cfg.detector)
    if cls is None:
        raise ConfigError(f"unknown detector {cfg.detector!r}; choose one of {', '.join(DETECTORS)}")
    path, digest = resolve_model(cfg.detector, cfg.model_path)
    session = load_session(path, cfg.device, getattr(cls, "dynamic_inputs", None), getattr(cls, "dynamic_outputs", None))
    return cls(session, digest, max_side=cfg.max_side, tile=cfg.tile, tile_size=cfg.tile_size,
               nms_iou=cfg.nms_iou, batch=batch)
