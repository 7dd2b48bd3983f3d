"""The scripts in examples/ run as a user runs them (a separate process), on real photos of
``$VEIL_DATA`` with the real detector and embedder; their results are checked, not just their
exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("dlib")

from conftest import ROOT, require  # noqa: E402
from veil.identify.gallery import KEY_ENV  # noqa: E402

PHOTOS = "reid/face_recognition"


def test_selective_and_depth_example(data_dir, tmp_path):
    require(data_dir / PHOTOS / "identities.csv", "reid/face_recognition photos")
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}  # the example makes its own key file
    env["PYTHONPATH"] = str(ROOT)  # this checkout's veil, whatever is installed
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "selective_and_depth.py"),
                           "--data", str(data_dir), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads((out / "summary.json").read_text())

    # identity: two_people.jpg shows Obama (left) and Biden (right); Obama is enrolled
    assert [f["anonymized"] for f in s["spare"]] == [False, True], s["spare"]
    assert s["spare"][0]["identity"] == "obama" and "obama" not in s["spare"][1]["reason"]
    assert [f["anonymized"] for f in s["only"]] == [True, False], s["only"]
    assert s["only"][0].get("identity") is None  # a hidden face's record does not name anyone

    # depth: the two actors are near (landmark distance < 3 m), the background face(s) beyond or unknown
    near = [f for f in s["only_beyond"] if f["distance_m"] is not None and f["distance_m"] < 3.0]
    assert len(near) == 2 and not any(f["anonymized"] for f in near), s["only_beyond"]
    others = [f for f in s["only_beyond"] if f not in near]
    assert others and all(f["anonymized"] for f in others), s["only_beyond"]
    kept = [f for f in s["keep_nearest"] if not f["anonymized"]]  # no focal length: relative distances
    nearest = min(near, key=lambda f: f["distance_m"])
    assert len(kept) == 1 and kept[0]["x"] == nearest["x"], s["keep_nearest"]
    for name in ("two_people_spare.jpg", "two_people_only.jpg", "kit_with_rose_only_beyond.jpg"):
        assert (out / name).stat().st_size > 0
    assert "VISIBLE" in proc.stdout and "hidden" in proc.stdout
