"""The CLI and API on real clips: timing, audio, resolution, reports and failing closed."""

import json
import shutil

import av
import numpy as np
import pytest
from conftest import require
from helpers import box_slices, run


def decode(path, limit=None):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f, _ in zip(c.decode(v), range(limit or 10**9))]
        return frames, v, [s.type for s in c.streams]


def test_hamilton_range_keeps_timing_audio_and_hides_faces(hamilton, tmp_path):
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    res = run("anonymize", hamilton, "-o", out, "--start", "2", "--end", "4", "--report", report, "-q")
    assert res.exit_code == 0, res.output
    frames, v, kinds = decode(out)
    assert (v.width, v.height) == (640, 360)
    assert v.average_rate == pytest.approx(30000 / 1001, rel=1e-3)
    assert "audio" in kinds
    assert 55 <= len(frames) <= 62
    rep = json.loads(report.read_text())["items"][0]
    assert rep["counts"]["frames"] == len(frames)  # every written frame went through detection
    assert rep["video"]["audio_copied"] is True
    # where the report says a face was, the output differs strongly from the input
    src = {}
    with av.open(str(hamilton)) as c:
        for f in c.decode(video=0):
            if f.time is not None and 2.0 <= f.time < 4.0:
                src[len(src)] = f.to_ndarray(format="rgb24")
    hidden = 0
    for rec in rep["frames"][:: 10]:
        for face in rec["faces"]:
            x1, y1, x2, y2 = (int(v) for v in face["box"])
            if min(x2 - x1, y2 - y1) < 20:
                continue
            sl = box_slices(face["box"], src[rec["index"]].shape)
            a, b = src[rec["index"]][sl].astype(int), frames[rec["index"]][sl]
            hidden += (np.abs(a - b).sum(axis=2) > 20).mean() > 0.3
    assert hidden >= 3


def test_1080p_pixelate_exact_resolution(data_dir, tmp_path):
    src = require(data_dir / "video" / "pedestrians_1080p.mp4", "video/pedestrians_1080p clip")
    out = tmp_path / "p.mp4"
    res = run("anonymize", src, "-o", out, "--filter", "pixelate", "--end", "0.4", "--audio", "drop", "-q")
    assert res.exit_code == 0, res.output
    frames, v, kinds = decode(out)
    assert (v.width, v.height) == (1920, 1080) and frames[0].shape == (1080, 1920, 3)
    assert "audio" not in kinds and len(frames) == 10


def test_folder_with_images_and_video(hamilton, tmp_path, astronaut):
    from PIL import Image

    src = tmp_path / "in"
    (src / "clips").mkdir(parents=True)
    Image.fromarray(astronaut).save(src / "a.jpg")
    # a short real clip: cut with veil's own writer in pass-through? no: copy the real file
    shutil.copy(hamilton, src / "clips" / "h.mp4")
    res = run("anonymize", src, "-o", tmp_path / "out", "--end", "1.5", "-q", "--report", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "a.jpg").is_file() and (tmp_path / "out" / "clips" / "h.mp4").is_file()
    kinds = sorted(i["kind"] for i in json.loads((tmp_path / "r.json").read_text())["items"])
    assert kinds == ["image", "video"]


def test_truncated_video_writes_nothing(hamilton, tmp_path):
    data = hamilton.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 2])
    res = run("anonymize", bad, "-o", tmp_path / "o.mp4")
    assert res.exit_code == 3, res.output
    assert "cut.mp4" in res.output
    assert list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("content", [b"", b"this is not a video", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64])
def test_not_a_video(tmp_path, content):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(content)
    res = run("anonymize", bad, "-o", tmp_path / "o.mp4")
    assert res.exit_code == 3 and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_interrupt_leaves_no_output(hamilton, tmp_path, monkeypatch):
    """Ctrl-C in the middle of a video: exit 130 and no partial file."""
    from veil.render.blur import Blur

    calls = {"n": 0}
    original = Blur.apply

    def interrupted(self, frame, faces):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        return original(self, frame, faces)

    monkeypatch.setattr(Blur, "apply", interrupted)
    res = run("anonymize", hamilton, "-o", tmp_path / "o.mp4", "-q")
    assert res.exit_code == 130
    assert list(tmp_path.iterdir()) == []


def test_detector_failure_leaves_no_output(hamilton, tmp_path, monkeypatch):
    """An error inside detection aborts the file: no un-anonymized frame is ever written."""
    from veil.detect.centerface import CenterFace

    calls = {"n": 0}
    original = CenterFace.decode

    def broken(self, outputs, min_score):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("simulated inference failure")
        return original(self, outputs, min_score)

    monkeypatch.setattr(CenterFace, "decode", broken)
    res = run("anonymize", hamilton, "-o", tmp_path / "o.mp4", "-q")
    assert res.exit_code != 0
    assert not (tmp_path / "o.mp4").exists() and list(tmp_path.iterdir()) == []


def test_api_video(hamilton, tmp_path):
    import veil

    anon = veil.Anonymizer(filter="solid", start=1.0, end=2.0)
    item = anon.video(hamilton, tmp_path / "s.mp4")
    assert item.status == "ok" and item.counts["frames"] == item.extra["video"]["frames"] >= 29
    assert item.counts["anonymized"] > 0
