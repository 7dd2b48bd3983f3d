"""Low-light enhancement for a second detection pass on dark frames.

Why: in a dark frame a face is a few photons deep in sensor noise, and dark skin reflects
fewer of them, so low light costs recall on dark skin first (FairFace crops under a simulated
dark sensor: see docs/benchmarks.md). Brightening alone does not help the detector (the
noise is brightened too); brightening *and* smoothing the noise does.

The enhancement is applied only when a frame is dark (mean luma below ``level``), so normal
frames cost nothing. ``bright_end`` (off by default) can also require the 99th luma percentile
to be below it: night scenes with lights in view and lit stages are then left alone, which
halves detection time on such footage but covers fewer faces there (WIDER dev night scenes:
260 vs 207 of 324 faces >= 80 % under a box with the pass; ``bench/lowlight_trigger.py``,
docs/benchmarks.md §8.2). Brightening is a gain in linear light that brings the frame's mean to
``target`` (an 18 % grey card), capped at ``max_gain``; denoising is a Gaussian blur whose
sigma grows with the gain (more gain, more amplified noise). Both work on the image at the
detector's resolution (downscaling already averages some noise away, and it is cheaper).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..srgb import to_linear, to_srgb

__all__ = ["LowLight"]

_LUT_TO_LINEAR = to_linear(np.arange(256) / 255.0).astype(np.float32)


class LowLight:
    """Decide whether a frame is dark, and brighten + denoise it for detection."""

    def __init__(self, level: float = 50.0, target: float = 0.18, max_gain: float = 40.0, sigma: float = 2.0,
                 bright_end: float = 256.0):
        self.level = level
        self.bright_end = bright_end
        self.target = target
        self.max_gain = max_gain
        self.sigma = sigma

    @staticmethod
    def thumbnail_luma(rgb: np.ndarray) -> np.ndarray:
        """Luma (0-255) of a 64 x 64 thumbnail: what :meth:`is_dark` looks at (cheap)."""
        small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
        return small @ np.array([0.299, 0.587, 0.114], np.float32)

    def is_dark(self, rgb: np.ndarray) -> bool:
        """Mean luma (0-255) below ``level`` and 99th percentile below ``bright_end`` (256:
        any), on the thumbnail."""
        luma = self.thumbnail_luma(rgb)
        return float(luma.mean()) < self.level and float(np.percentile(luma, 99)) < self.bright_end

    def enhance(self, rgb: np.ndarray) -> np.ndarray:
        """The image brightened in linear light and denoised (RGB uint8, same size).

        Give it the image as the detector will see it (already at detection resolution):
        ``sigma`` is in those pixels.
        """
        lin = _LUT_TO_LINEAR[rgb]
        gain = min(self.target / max(float(lin.mean()), 1e-5), self.max_gain)
        lin_lut = np.clip(_LUT_TO_LINEAR * gain, 0.0, 1.0)
        srgb = to_srgb(lin_lut)
        out = np.clip(srgb * 255 + 0.5, 0, 255).astype(np.uint8)[rgb]
        # amplified noise grows with the gain: blur more when the gain is high
        sigma = self.sigma * min(1.0, float(np.sqrt(gain / 10.0)))
        return cv2.GaussianBlur(out, (0, 0), sigma) if sigma >= 0.3 else out
