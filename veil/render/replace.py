"""Replacement by an image (an emoji, a logo), alpha-blended over a solid fill.

The replacement image is stretched over the face's mask box. Where the replacement is
transparent the face must still not show through, so transparent pixels show the solid
colour, never the original face.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from .base import MaskedFilter
from ..colors import parse_color

__all__ = ["ReplaceImage"]


def _load_rgba(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ConfigError(f"cannot read replacement image {path}: {exc.__class__.__name__}") from None


class ReplaceImage(MaskedFilter):
    name = "image"

    def __init__(self, image: Path | None = None, color: str = "#000000", **kw):
        super().__init__(**kw)
        if image is None:
            raise ConfigError("the image filter needs a replacement image (--image FILE)")
        self.rgba = _load_rgba(Path(image))
        self.background = np.array(parse_color(color), np.float32)

    def fill(self, roi: np.ndarray, size: float) -> np.ndarray:
        h, w = roi.shape[:2]
        rgba = cv2.resize(self.rgba, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        a = rgba[..., 3:4] / 255.0
        return (rgba[..., :3] * a + self.background * (1 - a) + 0.5).astype(np.uint8)
