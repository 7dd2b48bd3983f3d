"""Gaussian blur whose strength follows the face size.

A fixed kernel is too weak on large faces (a 1080p close-up stays recognizable). Here the
blur's standard deviation is a fraction of the mask size (:data:`SIGMA_PER_SIZE`, chosen with
``veil eval privacy``: see docs/benchmarks.md). For speed, and to make the blur impossible
to invert, the region is first downsampled so the blur runs on a few dozen pixels, then
blurred and upsampled: detail finer than the blur is discarded, not merely attenuated.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..floors import MIN_STRENGTH as _FLOORS
from .base import MaskedFilter

__all__ = ["Blur", "SIGMA_PER_SIZE", "MIN_STRENGTH"]

#: Gaussian sigma as a fraction of the mask's long side, at strength 1.
SIGMA_PER_SIZE = 0.12
#: Floor of ``strength``, measured with ``veil eval privacy --strengths ...``: below it faces
#: were re-identified, or still found by veil's detector (docs/benchmarks.md 3.1).
MIN_STRENGTH = _FLOORS["blur"]
_WORK_SIGMA = 2.0  # sigma in pixels at the working (downsampled) resolution


class Blur(MaskedFilter):
    name = "blur"
    #: weakest strength allowed without ``allow_weak``: see :data:`MIN_STRENGTH`
    min_strength = MIN_STRENGTH

    def fill(self, roi: np.ndarray, size: float) -> np.ndarray:
        h, w = roi.shape[:2]
        sigma = max(1.0, SIGMA_PER_SIZE * self.strength * size)
        f = min(1.0, _WORK_SIGMA / sigma)
        small = cv2.resize(roi, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma * f, borderType=cv2.BORDER_REPLICATE)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
