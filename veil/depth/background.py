"""Blur the whole background region beyond a depth (needs dense depth: RGB-D or mono)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["blur_beyond", "BackgroundBlur"]


def blur_beyond(frame: np.ndarray, depth_m: np.ndarray, beyond_m: float, strength: float = 1.0,
                unknown_is_far: bool = True) -> np.ndarray:
    """A copy of ``frame`` with every pixel farther than ``beyond_m`` blurred.

    ``depth_m`` may be at a lower resolution (it is resized, nearest); pixels without a
    depth reading (NaN) count as far when ``unknown_is_far`` (the privacy-safe default).
    """
    H, W = frame.shape[:2]
    d = depth_m if depth_m.shape == (H, W) else cv2.resize(depth_m, (W, H), interpolation=cv2.INTER_NEAREST)
    far = d > beyond_m
    if unknown_is_far:
        far |= ~np.isfinite(d)
    if not far.any():
        return frame.copy()
    # strong, cheap blur: downsample, blur, upsample (detail is gone, not attenuated)
    k = 8
    small = cv2.resize(frame, (max(1, W // k), max(1, H // k)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 2.0 * strength)
    blurred = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    out = frame.copy()
    out[far] = blurred[far]
    return out


class BackgroundBlur:
    """Filter wrapper: blur the region beyond ``beyond_m`` (from the distance annotator's
    latest depth map of this very frame), then let the face filter run."""

    def __init__(self, inner, annotator, beyond_m: float):
        self.inner, self.annotator, self.beyond_m = inner, annotator, beyond_m
        self.name = inner.name
        self.anonymizes = getattr(inner, "anonymizes", True)
        annotator.keep_map = True

    def apply(self, frame: np.ndarray, faces) -> np.ndarray:
        last = self.annotator.last_depth_m
        if last is not None and last[0] == id(frame):
            frame = blur_beyond(frame, last[1], self.beyond_m)
        else:  # no depth for this frame: everything counts as far (fail closed)
            frame = blur_beyond(frame, np.full((1, 1), np.nan, np.float32), self.beyond_m)
        return self.inner.apply(frame, faces)
