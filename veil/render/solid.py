"""Solid colour fill: the strongest filter, nothing of the face survives."""

from __future__ import annotations

import numpy as np

from .base import MaskedFilter
from ..colors import parse_color

__all__ = ["Solid"]


class Solid(MaskedFilter):
    name = "solid"

    def __init__(self, color: str = "#000000", **kw):
        super().__init__(**kw)
        self.rgb = np.array(parse_color(color), np.uint8)

    def fill(self, roi: np.ndarray, size: float) -> np.ndarray:
        return np.broadcast_to(self.rgb, roi.shape)
