"""sRGB <-> linear light (IEC 61966-2-1 transfer curve), in one place.

Light adds up, and a camera's sensor counts it, in *linear* units; image files store sRGB.
Both the detector's low-light pass (a gain in linear light, :mod:`veil.detect.lowlight`) and
the evaluation's simulated dark sensor (:mod:`veil.eval.conditions`) convert between the two,
and must agree on the curve. Values are floats in [0, 1]; the result has the input's dtype.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_linear", "to_srgb"]


def to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB-encoded values (clip first: the curve is for [0, 1])."""
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
