"""veil.srgb: the IEC 61966-2-1 curve both the low-light pass and the dark-sensor renders use."""

import numpy as np

from veil.srgb import to_linear, to_srgb


def test_known_values_and_round_trip():
    np.testing.assert_allclose(to_linear(np.array([0.0, 0.5, 1.0])), [0.0, 0.21404, 1.0], atol=1e-5)
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(to_srgb(to_linear(x)), x, atol=1e-9)


def test_the_curve_is_continuous_at_the_knee_and_keeps_float32():
    knee = np.array([0.04045 - 1e-7, 0.04045 + 1e-7])
    lo, hi = to_linear(knee)
    assert abs(hi - lo) < 1e-6
    assert to_linear(np.ones(3, np.float32)).dtype == np.float32
