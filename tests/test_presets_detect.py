"""The detector behind each preset, and the cascade's windows pass (docs/benchmarks.md §11.1):
`fast` runs the yunet+centerface cascade at 640 px, and the windows between its full
detections run on the cascade's CenterFace pass (with YuNet-n windows the dark OTB variant
leaked). Real models and a real photo; no detector is mocked."""

import numpy as np
import pytest

from veil.config import DetectConfig, preset
from veil.detect import MergedDetector, build_detector
from veil.detect.merged import WINDOW_PASS


def test_fast_runs_the_cascade_at_640():
    cfg = preset("fast")
    assert cfg.detect.detector == "yunet+centerface" and cfg.detect.max_side == 640 and cfg.track.detect_every == 3
    det = build_detector(cfg.detect).base  # inside the low-light wrapper
    assert isinstance(det, MergedDetector)
    assert [(p.name, p.resolution.max_side) for p in det.passes] == [("yunet", 640), ("centerface", 320)]
    assert det.window_pass == WINDOW_PASS["yunet+centerface"] == 1


def test_other_presets_keep_centerface():
    for name in ("balanced", "thorough", "deface"):
        assert preset(name).detect.detector == "centerface"


def test_windows_run_on_the_window_pass(astronaut):
    det = build_detector(DetectConfig(detector="yunet+centerface", max_side=512, low_light=False))
    yn, cf = det.passes
    face = det.detect([astronaut], 0.5)[0]
    assert len(face) == 1
    got = det.detect_rois(astronaut, face.xyxy, 0.2)
    want = cf.detect_rois(astronaut, face.xyxy, 0.2)
    assert len(got) == 1 and np.array_equal(got.xyxy, want.xyxy) and np.array_equal(got.scores, want.scores)
    other = yn.detect_rois(astronaut, face.xyxy, 0.2)
    assert not np.array_equal(other.scores, got.scores)  # a different network: the choice is real


def test_window_pass_must_be_a_pass(astronaut):
    det = build_detector(DetectConfig(detector="yunet+centerface", max_side=512, low_light=False))
    with pytest.raises(ValueError, match="window_pass"):
        MergedDetector("x", det.passes, det.relative, window_pass=2)
