"""Frames by index (veil.io.frame_source): exact frames, and prefetching the next ones after a
request without changing which frame an index gives."""

from __future__ import annotations

import time

import av
import numpy as np

from veil.config import VideoConfig
from veil.io.frame_source import FrameSource
from veil.io.video import decode_video


def _clip(path, n=24):
    """``n`` distinct frames, lossless, a keyframe every 8 (so a jump seeks)."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "0", "g": "8"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv444p"
        for i in range(n):
            img = rng.integers(0, 255, (48, 64, 3), np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
    return path


def _settled(src: FrameSource) -> None:
    deadline = time.monotonic() + 60
    while src.prefetching:
        assert time.monotonic() < deadline, "the prefetch did not finish"
        time.sleep(0.01)


def test_prefetch_decodes_the_next_frames_and_they_are_exact(tmp_path):
    clip = _clip(tmp_path / "c.mp4")
    seen = [rgb for rgb, _ in decode_video(clip, VideoConfig())]
    times = [t for _, t in decode_video(clip, VideoConfig())]
    src = FrameSource(clip, "video", times, prefetch=4)
    plain = FrameSource(clip, "video", times)
    try:
        for start in (0, 13):  # from the start, and after a jump (a seek)
            assert np.array_equal(src.frame(start), seen[start])
            _settled(src)
            assert all(j in src.cache for j in range(start + 1, start + 5))
            for j in range(start, start + 6):  # cached or decoded, every index gives its frame
                assert np.array_equal(src.frame(j), seen[j]), j
            _settled(src)
        assert np.array_equal(src.frame(23), seen[23])  # the last frame: nothing after it to fetch
        _settled(src)
        assert np.array_equal(plain.frame(0), seen[0]) and 1 not in plain.cache  # off by default
    finally:
        src.close()
        plain.close()
