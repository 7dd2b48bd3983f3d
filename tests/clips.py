"""Short clips cut from the evaluation data for the plan, serve and browser tests (built in
tmp dirs, never copied into the repository)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np

from helpers import box_slices, ffmpeg


def cut(src: Path, dst: Path, start: float = 2.0, frames: int = 24, audio: bool = True) -> Path:
    """``frames`` frames of ``src`` from ``start`` seconds, re-encoded (H.264, AAC)."""
    cmd = [ffmpeg(), "-loglevel", "error", "-y", "-ss", str(start), "-i", str(src), "-frames:v", str(frames),
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run([*cmd, str(dst)], check=True)
    return dst


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def region_diff(a: np.ndarray, b: np.ndarray, box) -> float:
    """Mean absolute difference of two frames inside ``box`` (x1, y1, x2, y2)."""
    sl = box_slices(box, a.shape)
    return float(np.abs(a[sl].astype(int) - b[sl].astype(int)).mean())


def anonymized_masks(plan, hw):
    """Frame index -> boolean mask of the pixels the plan's anonymized faces cover."""
    from veil.pipeline import render_order
    from veil.plan_faces import faces_of
    from veil.render.mask import mask_regions

    out = {}
    for i, boxes in plan.boxes_by_frame().items():
        m = np.zeros(hw, bool)
        for r in mask_regions(render_order(faces_of(boxes)), hw):
            m[r.slices] |= r.alpha > 0
        out[i] = m
    return out


def unchanged_diffs(got_frames, src_frames, entries, masks) -> list[float]:
    """For each plan entry (index, box): the mean difference of output and source over the
    box's pixels that no anonymized mask covers (boxes mostly covered are skipped)."""
    out = []
    for f in entries:
        index, box = (f["index"], f["box"]) if isinstance(f, dict) else (f.index, f.box)
        got, src, covered = got_frames[index], src_frames[index], masks.get(index)
        sl = box_slices(box, src.shape)
        free = ~covered[sl] if covered is not None else np.ones(got[sl].shape[:2], bool)
        if free.mean() >= 0.25:
            out.append(float(np.abs(got[sl].astype(int) - src[sl].astype(int)).mean(axis=2)[free].mean()))
    return out


def assert_visible(diffs: list[float], at_least: int = 10) -> None:
    """Only re-encoding noise: small everywhere, tiny typically (a hidden face differs by 10+)."""
    assert len(diffs) >= at_least, diffs
    assert max(diffs) < 6 and float(np.median(diffs)) < 3, diffs


def cut_gops(src: Path, dst: Path, start: float, frames: int, keyint: int, width: int, audio: bool = True) -> Path:
    """Like :func:`cut`, scaled to ``width`` and with a keyframe every ``keyint`` frames
    exactly (closed GOPs, no scene-cut keyframes): a clip that splits into segments."""
    cmd = [ffmpeg(), "-loglevel", "error", "-y", "-ss", str(start), "-i", str(src), "-frames:v", str(frames),
           "-vf", f"scale={width}:-2", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
           "-g", str(keyint), "-keyint_min", str(keyint), "-sc_threshold", "0"]
    cmd += ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run([*cmd, str(dst)], check=True)
    return dst


def fail_encoder_at(monkeypatch, n: int, exc: BaseException) -> None:
    """Make the ``n``-th encode + mux step of :class:`veil.io.encoder.VideoEncoder` (on its
    thread) raise ``exc``: a disk that fills up, a receiver that goes away."""
    from veil.io.encoder import VideoEncoder

    real, calls = VideoEncoder._encode_and_mux, []

    def failing(self, frame):
        calls.append(frame)
        if len(calls) == n:
            raise exc
        real(self, frame)

    monkeypatch.setattr(VideoEncoder, "_encode_and_mux", failing)
