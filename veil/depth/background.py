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
    """The render step before the face filter: blur the region beyond ``beyond_m``, given the
    frame's depth map in metres (:attr:`veil.stages.FrameInfo.depth_m`, from the distance
    stage). A frame without one is blurred whole: unknown depth counts as far (fail closed)."""

    def __init__(self, beyond_m: float):
        self.beyond_m = beyond_m

    def apply(self, frame: np.ndarray, depth_m: np.ndarray | None) -> np.ndarray:
        if depth_m is None:
            depth_m = np.full((1, 1), np.nan, np.float32)
        return blur_beyond(frame, depth_m, self.beyond_m)
