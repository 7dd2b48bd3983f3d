"""Face detectors behind one small protocol, looked up by name."""

from __future__ import annotations

from ..config import DetectConfig
from ..errors import ConfigError
from ..models import resolve_model
from .base import Detector, GridDetector
from .centerface import CenterFace
from .merged import CASCADES, WINDOW_PASS, MergedDetector
from .onnx_runtime import load_session
from .yunet import YuNet

__all__ = ["Detector", "GridDetector", "CenterFace", "YuNet", "MergedDetector", "DETECTORS", "CASCADES", "DETECTOR_NAMES", "build_detector",
           "model_info"]

#: name -> GridDetector subclass. Add a detector by adding a class here.
DETECTORS: dict[str, type[GridDetector]] = {"centerface": CenterFace, "yunet": YuNet}

#: every name ``DetectConfig.detector`` accepts: single detectors, then cascades
DETECTOR_NAMES: tuple[str, ...] = (*DETECTORS, *CASCADES)


def build_detector(cfg: DetectConfig, batch: int = 4) -> GridDetector:
    """Load the configured detector (model file verified by sha256).

    With ``cfg.precision == "int8"`` the session runs the int8 copy of the model (made once
    and cached, see :mod:`veil.detect.quantize`); ``model_sha256`` is then the int8 file's,
    ``source_model_sha256`` the verified source model's, and ``precision`` says which.
    A name in :data:`CASCADES` builds a :class:`MergedDetector` of several such detectors.
    """
    if cfg.detector in CASCADES:
        if cfg.model_path is not None:
            raise ConfigError(f"detector {cfg.detector!r} uses the built-in models; a model file needs a single detector")
        spec = CASCADES[cfg.detector]
        passes = [_single(cfg, name, round(cfg.max_side * rel), batch) for name, rel in spec]
        det: GridDetector | MergedDetector = MergedDetector(cfg.detector, passes, [rel for _, rel in spec],
                                                            WINDOW_PASS.get(cfg.detector, 0))
    elif cfg.detector in DETECTORS:
        det = _single(cfg, cfg.detector, cfg.max_side, batch)
    else:
        raise ConfigError(f"unknown detector {cfg.detector!r}; choose one of {', '.join(DETECTOR_NAMES)}")
    if cfg.scales or cfg.flip or cfg.low_light or cfg.rotations:
        from .augment import AugmentedDetector
        from .lowlight import LowLight

        return AugmentedDetector(det, cfg.scales, cfg.flip, LowLight(cfg.low_light_level, bright_end=cfg.low_light_bright_end) if cfg.low_light else None,  # type: ignore[return-value, arg-type]
                                 rotations=cfg.rotations)
    return det  # type: ignore[return-value]


def _single(cfg: DetectConfig, name: str, max_side: int, batch: int) -> GridDetector:
    cls = DETECTORS[name]
    path, digest = resolve_model(name, cfg.model_path)
    dyn_in, dyn_out = getattr(cls, "dynamic_inputs", None), getattr(cls, "dynamic_outputs", None)
    if cfg.precision == "int8":
        from .quantize import int8_model

        with int8_model(path, digest, dyn_in or {}, dyn_out or {}, name=name) as q:
            session = load_session(q.path, cfg.device, dyn_in, dyn_out, threads=cfg.threads)
        model_sha = q.sha256
    else:
        session = load_session(path, cfg.device, dyn_in, dyn_out, threads=cfg.threads)
        model_sha = digest
    det = cls(session, model_sha, max_side=max_side, tile=cfg.tile, tile_size=cfg.tile_size,
              nms_iou=cfg.nms_iou, batch=batch)
    det.precision = cfg.precision
    det.source_model_sha256 = digest
    return det


def model_info(det: Detector) -> dict:
    """The detector as reports, plans and provenance name it: name, sha256, the execution
    provider, the precision, and the sha256 of the verified model it was derived from (another
    one when an int8 copy runs). A detector built elsewhere may lack the last three."""
    return {"name": det.name, "sha256": det.model_sha256, "provider": getattr(det, "provider", None),
            "precision": getattr(det, "precision", "fp32"),
            "source_sha256": getattr(det, "source_model_sha256", det.model_sha256)}
