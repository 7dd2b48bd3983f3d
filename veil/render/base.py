"""The filter protocol and the masking machinery all anonymizing filters share.

``Filter.apply(frame, faces) -> frame`` returns a new frame; the input is never modified.
Only faces whose ``decision`` is ``anonymize`` are touched: the policy stage decides, the
renderer obeys.

:class:`MaskedFilter` computes each face's region (see :mod:`veil.render.mask`), asks the
subclass for the filtered pixels of that region with :meth:`MaskedFilter.fill`, and blends
them in with the mask. A new filter implements only ``fill``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..config import MASK_SCALE
from ..faces import Faces
from .mask import mask_regions

__all__ = ["Filter", "MaskedFilter"]


@runtime_checkable
class Filter(Protocol):
    name: str

    def apply(self, frame: np.ndarray, faces: Faces) -> np.ndarray:
        """A copy of ``frame`` (H, W, 3 uint8) with the faces to anonymize hidden."""
        ...


class MaskedFilter:
    name = "masked"

    def __init__(self, shape: str = "ellipse", mask_scale: float = MASK_SCALE, feather: float = 0.0, strength: float = 1.0,
                 head: bool = True):
        self.shape = shape
        self.head = head
        self.mask_scale = mask_scale
        self.feather = feather
        self.strength = strength

    def fill(self, roi: np.ndarray, size: float) -> np.ndarray:
        """Filtered pixels for a region of interest; ``size`` is the mask's long side."""
        raise NotImplementedError

    def apply(self, frame: np.ndarray, faces: Faces) -> np.ndarray:
        out = frame.copy()
        for region in mask_regions(faces, frame.shape[:2], self.shape, self.mask_scale, self.feather, self.head):
            roi = out[region.slices]
            filled = self.fill(roi, region.size)
            a = region.alpha
            if self.feather == 0:
                hard = a > 0.5
                roi[hard] = filled[hard]
            else:
                a3 = a[..., None]
                roi[:] = np.clip(filled * a3 + roi * (1.0 - a3) + 0.5, 0, 255).astype(np.uint8)
        return out
