"""Segmented runs (veil.engine.segments) against the local path, on a real clip in 4 segments.

The clip: 4 s of the hamilton stage clip (several faces), 320 px wide, a keyframe every 15
frames, cut into segments of 1.5 s: frames 0-44, 45-89, 90-119. The clip starts where the
stage's scene cut falls on frame 45, the first seam: the replay must see a cut that only
the two segments' frames together show. Without Ray: the LocalExecutor (and once the process
pool) runs the segments.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import av
import numpy as np
import pytest

from veil.api import Anonymizer
from veil.config import preset
from veil.engine.keyframes import plan_segments, scan
from veil.engine.segment_tasks import RenderTask
from veil.engine.segments import LocalExecutor, ProcessExecutor, SegmentError, analyze_segmented, run_segmented
from veil.errors import ConfigError

from clips import cut_gops

SEGMENT_S = 1.5
SCENE_CUT_AT = 45


def _frames_and_times(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as c:
        got = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in c.decode(video=0)]
    return [f for f, _ in got], [t for _, t in got]


def _audio_packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size]


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n not in keep)


@pytest.fixture(scope="module")
def clip(hamilton, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("segments")
    return cut_gops(hamilton, folder / "clip.mp4", start=2.0 + 2 / 29.97, frames=120, keyint=15, width=320)


@pytest.fixture(scope="module")
def local(clip):
    """The local path: analyze, then render the plan (bit-identical to the one-pass run)."""
    anon = Anonymizer()
    plan = anon.analyze(clip)
    out = clip.with_name("local.mp4")
    anon.render(clip, plan, out)
    return plan, out


@pytest.fixture(scope="module")
def segmented(clip):
    out = clip.with_name("segmented.mp4")
    result = run_segmented(clip, out, preset("balanced"), LocalExecutor(), segment_s=SEGMENT_S)
    return result, out


def seams(result) -> list[int]:
    return [s.first for s in result.segments[1:]]


def test_split_at_keyframes(clip, segmented):
    layout = scan(clip)
    assert layout.starts == (0, 15, 30, 45, 60, 75, 90, 105)
    result, _ = segmented
    assert [(s.first, s.end) for s in result.segments] == [(0, 45), (45, 90), (90, 120)]
    assert plan_segments(layout, 100.0)[0].frames == 120  # longer than the clip: one segment


def test_same_plan_as_local_analysis(local, segmented):
    """Decisions identical: the whole plan (tracks, ids, boxes, reasons, frame times) is the
    local one, including tracks that cross a seam."""
    plan, _ = local
    result, _ = segmented
    assert result.plan.model_dump(exclude={"created"}) == plan.model_dump(exclude={"created"})
    crossing = [t for t in plan.tracks if any(t.first < s <= t.last for s in seams(result))]
    assert crossing, "the clip should have tracks across a seam"


def test_scene_cut_on_a_seam(clip, segmented):
    """The clip is built so that its scene cut is the first seam (what the plan test covers)."""
    from veil.track import SceneCutDetector

    frames, _ = _frames_and_times(clip)
    det = SceneCutDetector(preset("balanced").track.scene_cut)
    assert [i for i, f in enumerate(frames) if det.update(f)] == [SCENE_CUT_AT]
    assert SCENE_CUT_AT in seams(segmented[0])


def test_frames_times_audio_as_local(local, segmented):
    plan, local_out = local
    _, seg_out = segmented
    lf, lt = _frames_and_times(local_out)
    sf, st = _frames_and_times(seg_out)
    assert len(sf) == len(lf) == plan.input.frames
    assert st == lt
    assert [round(t, 6) for t in st] == plan.input.timestamps
    assert _audio_packets(seg_out) == _audio_packets(local_out)  # stream copy, once


def test_pixels_match_local_up_to_encoder_noise(clip, local, segmented):
    """Lossy encodes of other GOPs differ a little everywhere; measured here and bounded."""
    _, local_out = local
    result, seg_out = segmented
    lf, _ = _frames_and_times(local_out)
    sf, _ = _frames_and_times(seg_out)
    diff = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(lf, sf)]
    near = {i for s in seams(result) for i in (s - 1, s)}
    at = [d for i, d in enumerate(diff) if i in near]
    away = [d for i, d in enumerate(diff) if i not in near]
    stats = {"seam_max": max(int(d.max()) for d in at), "seam_mean": float(np.mean([d.mean() for d in at])),
             "away_max": max(int(d.max()) for d in away), "away_mean": float(np.mean([d.mean() for d in away]))}
    print("segmented vs local, crf 20:", stats)
    assert stats["seam_mean"] < 2.0 and stats["away_mean"] < 2.0


def test_lossless_pixels_identical(clip, local, tmp_path):
    """With a lossless encoder the encoder noise is gone: every frame, seams included, is the
    local path's exactly (render-only run from the local plan)."""
    plan, _ = local
    cfg = preset("balanced").updated(video={"crf": 0})
    seg_out, local_out = tmp_path / "seg.mp4", tmp_path / "local.mp4"
    run_segmented(clip, seg_out, cfg, LocalExecutor(), segment_s=SEGMENT_S, plan=plan)
    Anonymizer(cfg).render(clip, plan, local_out)
    lf, lt = _frames_and_times(local_out)
    sf, st = _frames_and_times(seg_out)
    assert st == lt
    assert all(np.array_equal(a, b) for a, b in zip(lf, sf))


def test_face_across_a_seam_hidden_on_both_sides(clip, local, tmp_path):
    """Rendered with a magenta fill, every anonymized face's centre is magenta in every frame,
    on both sides of each seam (a frame missing a mask at a cut would show the face)."""
    plan, _ = local
    cfg = preset("balanced").updated(render={"filter": "solid", "color": "#ff00ff"})
    dst = tmp_path / "magenta.mp4"
    result = run_segmented(clip, dst, cfg, LocalExecutor(), segment_s=SEGMENT_S, plan=plan)
    out, _ = _frames_and_times(dst)
    magenta = np.array([255, 0, 255])
    at_seams = 0
    for t in plan.tracks:
        if t.decision != "anonymize":
            continue
        for f in t.frames:
            x1, y1, x2, y2 = f.box
            cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 5, (y2 - y1) / 5
            ys = slice(max(0, int(cy - ry)), max(1, int(cy + ry)))
            xs = slice(max(0, int(cx - rx)), max(1, int(cx + rx)))
            centre = out[f.index][ys, xs].reshape(-1, 3)
            if not len(centre):
                continue  # a coasted box outside the frame
            assert np.abs(centre.mean(axis=0) - magenta).max() < 40, f"track {t.id} visible at frame {f.index}"
            at_seams += any(f.index in (s - 1, s) for s in seams(result)) and t.first < f.index < t.last
    assert at_seams >= 2


class _BrokenDisk(LocalExecutor):
    """Runs the real tasks, but segment ``number``'s render writes into a folder that does not
    exist for its first ``times`` attempts (a worker that lost its disk)."""

    def __init__(self, number: int, times: int):
        self.number, self.times = number, times

    def map(self, fn, items):
        items = list(items)
        for k, (task_fn, task) in enumerate(items):
            if isinstance(task, RenderTask) and task.number == self.number and self.times > 0:
                self.times -= 1
                items[k] = (task_fn, dataclasses.replace(task, dst=str(Path(task.dst).parent / "gone" / "x.mp4")))
        return super().map(fn, items)


class _Interrupted(LocalExecutor):
    """Ctrl-C while the render runs, after the first segment was written."""

    def map(self, fn, items):
        items = list(items)
        if not isinstance(items[0][1], RenderTask):
            return super().map(fn, items)
        fn(items[0])
        raise KeyboardInterrupt


def test_segment_failing_twice_fails_the_file(clip, local, tmp_path):
    plan, _ = local
    before = set(os.listdir(tmp_path))
    dst = tmp_path / "out.mp4"
    with pytest.raises(SegmentError, match=r"segment 2 \(frames 90-119.*failed twice"):
        run_segmented(clip, dst, preset("balanced"), _BrokenDisk(2, times=2), segment_s=SEGMENT_S, plan=plan)
    assert not dst.exists()
    assert _leftovers(tmp_path, before) == []


def test_segment_failing_once_is_retried(clip, local, tmp_path):
    plan, local_out = local
    dst = tmp_path / "out.mp4"
    run_segmented(clip, dst, preset("balanced"), _BrokenDisk(1, times=1), segment_s=SEGMENT_S, plan=plan)
    assert _frames_and_times(dst)[1] == _frames_and_times(local_out)[1]


def test_ctrl_c_leaves_nothing(clip, local, tmp_path):
    plan, _ = local
    before = set(os.listdir(tmp_path))
    dst = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        run_segmented(clip, dst, preset("balanced"), _Interrupted(), segment_s=SEGMENT_S, plan=plan)
    assert not dst.exists()
    assert _leftovers(tmp_path, before) == []


def test_analyze_alone(clip, local):
    """``veil analyze`` in segments: the local plan, without writing a video."""
    plan, _ = local
    got = analyze_segmented(clip, preset("balanced"), LocalExecutor(), segment_s=SEGMENT_S)
    assert len(got.segments) == 3
    assert got.plan.model_dump(exclude={"created"}) == plan.model_dump(exclude={"created"})


def test_process_pool_gives_the_same_file(clip, segmented, tmp_path):
    """Two worker processes (spawned, each loads the detector): same plan, same frames."""
    result, seg_out = segmented
    dst = tmp_path / "pool.mp4"
    with ProcessExecutor(2) as pool:
        got = run_segmented(clip, dst, preset("balanced"), pool, segment_s=2.0)
    assert got.plan.model_dump(exclude={"created"}) == result.plan.model_dump(exclude={"created"})
    a, ta = _frames_and_times(dst)
    b, tb = _frames_and_times(seg_out)
    assert ta == tb and len(a) == len(b)


def test_refuses_what_cannot_be_split(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    for cfg in (preset("fast"), preset("balanced").updated(video={"start": 1.0})):
        with pytest.raises(ConfigError, match="local engine"):
            run_segmented(clip, dst, cfg, LocalExecutor())
    assert not dst.exists()


def test_refuses_a_plan_that_asks_to_follow(clip, local, tmp_path):
    """A drawn face to follow is resolved by the local render only; rendering the plan without
    following would show the face on every frame but the drawn one."""
    plan, _ = local
    plan = plan.model_copy(deep=True)
    drawn = plan.add_manual([(10, (100.0, 40.0, 140.0, 90.0))])
    drawn.follow = True
    plan = plan.validated()
    dst = tmp_path / "out.mp4"
    with pytest.raises(ConfigError, match="follow"):
        run_segmented(clip, dst, preset("balanced"), LocalExecutor(), segment_s=SEGMENT_S, plan=plan)
    assert not dst.exists()
