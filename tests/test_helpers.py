"""The shared test helpers themselves: boxes clipped to the frame, and data that is missing
skips a test on a developer's machine but fails it in CI."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require
from helpers import box_slices


def test_a_box_past_the_top_left_edge_keeps_its_part_inside_the_frame():
    frame = np.zeros((100, 200), bool)
    frame[box_slices((-10, -5, 30, 40), frame.shape)] = True
    assert frame.sum() == 30 * 40 and frame[:40, :30].all()


def test_a_box_outside_the_frame_selects_nothing():
    frame = np.zeros((100, 200), bool)
    for box in ((-50, -50, -10, -10), (250, 10, 300, 20), (10, 120, 20, 130)):
        assert frame[box_slices(box, frame.shape)].size == 0


def test_missing_data_skips_locally_and_fails_in_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(tmp_path / "absent", "test data")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="test data not found"):
        require(tmp_path / "absent", "test data")
    assert require(tmp_path, "test data") == tmp_path
