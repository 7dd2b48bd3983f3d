"""Focal length in pixels: from EXIF, else from ``focal_px``, else from a field of view.

EXIF first (the issue's order: a photo knows its own lens), then the configured focal
length, then the horizontal field of view. ``None`` when nothing is known: distances are
then unknown (and those faces anonymized by ``only_beyond``), while ``keep_nearest`` still
works because it only ranks faces of one frame.
"""

from __future__ import annotations

import math

__all__ = ["focal_from_exif", "focal_from_hfov", "resolve_focal"]

_DIAG_35MM = math.hypot(36.0, 24.0)  # 43.27 mm: the 35 mm equivalent is defined on the diagonal
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # FocalPlaneResolutionUnit -> mm per unit


def focal_from_exif(tags: dict[str, float], width: int, height: int) -> tuple[float, str] | None:
    """Focal length in pixels of a ``width`` x ``height`` image and how it was found."""
    f35 = tags.get("FocalLengthIn35mmFilm")
    if f35:
        return f35 * math.hypot(width, height) / _DIAG_35MM, "exif-35mm"
    f_mm, xres = tags.get("FocalLength"), tags.get("FocalPlaneXResolution")
    if f_mm and xres:
        mm_per_unit = _UNIT_MM.get(int(tags.get("FocalPlaneResolutionUnit", 2)))
        if mm_per_unit:
            px_per_mm = xres / mm_per_unit  # on the sensor, at the original resolution
            orig = max(tags.get("ExifImageWidth", 0), tags.get("ExifImageHeight", 0))
            resize = max(width, height) / orig if orig else 1.0
            return f_mm * px_per_mm * resize, "exif-sensor"
    return None


def focal_from_hfov(hfov_deg: float, width: int) -> float:
    return (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)


def resolve_focal(width: int, height: int, exif_tags: dict[str, float] | None = None,
                  focal_px: float | None = None, hfov: float | None = None) -> tuple[float | None, str]:
    """(focal in pixels or None, where it came from: exif-35mm, exif-sensor, focal-px, hfov, none)."""
    found = focal_from_exif(exif_tags, width, height) if exif_tags else None
    if found:
        return found
    if focal_px:
        return float(focal_px), "focal-px"
    if hfov:
        return focal_from_hfov(hfov, width), "hfov"
    return None, "none"
