"""Depth-aware anonymization: per-face distance (landmarks, RGB-D, monocular depth model),
per-track smoothing, and the background blur beyond a depth. Rules live in
:mod:`veil.policy.distance`; :func:`build_distance_stage` and :func:`build_background` are what
the pipeline calls."""

from __future__ import annotations

import logging

from .annotator import DistanceAnnotator
from .backends import DepthBackend, DepthMap, OnnxMonoDepth, RGBDFrames, face_depths
from .background import BackgroundBlur, blur_beyond
from .focal import focal_from_exif, focal_from_hfov, resolve_focal
from .landmarks import landmark_distance, landmark_scale

__all__ = ["DistanceAnnotator", "DepthBackend", "DepthMap", "OnnxMonoDepth", "RGBDFrames", "face_depths",
           "BackgroundBlur", "blur_beyond", "focal_from_exif", "focal_from_hfov", "resolve_focal",
           "landmark_distance", "landmark_scale", "build_distance_stage", "build_background"]

log = logging.getLogger("veil")


def build_backend(cfg, device: str = "auto"):
    from ..errors import ConfigError

    if cfg.depth_model and cfg.depth_frames:
        raise ConfigError("give either a depth model (--depth-model) or RGB-D depth frames (--depth-frames), not both")
    if cfg.depth_frames:
        return RGBDFrames(cfg.depth_frames, cfg.depth_match, cfg.depth_fps)
    if cfg.depth_model:
        return OnnxMonoDepth(cfg.depth_model, cfg.depth_model_kind, cfg.depth_side, device=device)
    return None


def build_distance_stage(cfg, device: str = "auto") -> DistanceAnnotator:
    """The distance stage a :class:`~veil.config.DepthConfig` asks for (its rules are built by
    :func:`veil.policy.build.build_policy`)."""
    from ..errors import ConfigError

    backend = build_backend(cfg, device)
    if cfg.background_beyond is not None and backend is None:
        raise ConfigError("--background-beyond needs dense depth: give --depth-frames or --depth-model")
    if cfg.only_beyond is not None and backend is None and not (cfg.focal_px or cfg.hfov):
        log.warning("--only-beyond without --focal-px/--hfov: distances are known only for images with an EXIF "
                    "focal length; every other face is anonymized")
    return DistanceAnnotator(cfg.focal_px, cfg.hfov, backend, every=cfg.depth_every, smooth_frames=cfg.smooth_frames,
                             keep_map=cfg.background_beyond is not None)


def build_background(cfg) -> BackgroundBlur | None:
    """The background blur ``cfg.background_beyond`` asks for (None: off)."""
    return BackgroundBlur(cfg.background_beyond) if cfg.background_beyond is not None else None
