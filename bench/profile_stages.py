"""Where the time of one video run goes, stage by stage (issue #14).

Profiles ``Anonymizer.video`` on the first ``--end`` seconds of a clip (default: the 1080p
pedestrians clip in $VEIL_DATA, 25 fps) in two ways:

1. **Each stage alone**, on the same frames: decode (PyAV, the file's own decoder threads),
   colour conversion to RGB (``to_ndarray``), detection (the preset's detector, batched as
   the run batches), tracking + look-ahead, policy, render (from the pipeline's own timers
   during the full run), RGB->YUV and encoding (libx264 at the run's settings).
2. **The full run** (``Anonymizer.video``, model already loaded): wall time.

``sum of stages`` minus ``wall`` is how much the run overlapped them (threads); a wall time
above the sum would mean work done twice or waiting. ``cpu`` is the full run's process CPU
time (all threads): on a machine loaded beyond its cores threads cannot overlap in wall
time, but work done twice still shows in CPU time. Timings on a shared machine are noisy:
run it a few times, alternating the versions compared, and compare medians.

    VEIL_DATA=/work/shared/data python bench/profile_stages.py --end 6 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

import numpy as np
from av.video.reformatter import VideoReformatter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's veil, not an installed one


def _decode(src: Path, end: float, convert: bool) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = []
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        for frame in inp.decode(vin):
            if frame.time is not None and frame.time >= end:
                break
            out.append(frame.to_ndarray(format="rgb24", threads=1) if convert else None)
    return time.perf_counter() - t0, out


def _encode_plain(frames: list[np.ndarray], cfg, fps: Fraction) -> tuple[float, float]:
    h, w = frames[0].shape[:2]
    conv = enc = 0.0
    threads = max(1, (os.cpu_count() or 2) // 2)
    with tempfile.TemporaryDirectory() as tmp, av.open(str(Path(tmp) / "x.mp4"), "w") as out:
        vout = out.add_stream("libx264", rate=fps, options={"crf": str(cfg.video.crf), "preset": cfg.video.encoder_preset})
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.codec_context.thread_count = threads
        to_yuv = VideoReformatter()
        for i, arr in enumerate(frames):
            t = time.perf_counter()
            yuv = to_yuv.reformat(av.VideoFrame.from_numpy_buffer(arr, format="rgb24"), format="yuv420p", threads=1)
            yuv.pts = i
            t2 = time.perf_counter()
            out.mux(vout.encode(yuv))
            conv += t2 - t
            enc += time.perf_counter() - t2
        t = time.perf_counter()
        out.mux(vout.encode(None))
        enc += time.perf_counter() - t
    return conv, enc


def profile_once(anon, src: Path, end: float) -> dict:
    from veil.track import Tracker
    from veil.track.lookahead import Lookahead

    cfg = anon.config
    decode_s, _ = _decode(src, end, convert=False)
    decode_rgb_s, frames = _decode(src, end, convert=True)
    with av.open(str(src)) as inp:
        fps = Fraction(inp.streams.video[0].average_rate)
    batch = cfg.video.batch
    t = time.perf_counter()
    for i in range(0, len(frames), batch):
        anon.pipeline.detect(frames[i : i + batch], min(cfg.track.low_threshold, cfg.detect.threshold))
    detect_alone = time.perf_counter() - t
    yuv_s, encode_s = _encode_plain(frames, cfg, fps)
    del frames

    # the full run, with the tracker and look-ahead timed from outside
    track = [0.0]
    real_update, real_push = Tracker.update, Lookahead.push

    def timed_update(self, *a, **kw):
        t = time.perf_counter()
        try:
            return real_update(self, *a, **kw)
        finally:
            track[0] += time.perf_counter() - t

    def timed_push(self, *a, **kw):
        t = time.perf_counter()
        items = list(real_push(self, *a, **kw))
        track[0] += time.perf_counter() - t
        return items

    Tracker.update, Lookahead.push = timed_update, timed_push
    anon.pipeline.timings.__init__()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t, cpu = time.perf_counter(), time.process_time()
            item = anon.video(src, Path(tmp) / "out.mp4")
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        Tracker.update, Lookahead.push = real_update, real_push
    if item.status != "ok":
        raise SystemExit(f"run failed: {item.error}")
    tm = anon.pipeline.timings
    stages = {
        "decode": decode_s,
        "rgb": max(0.0, decode_rgb_s - decode_s),
        "detect": tm.detect,
        "track": track[0],
        "policy": tm.policy,
        "render": tm.render,
        "yuv": yuv_s,
        "encode": encode_s,
    }
    return {"frames": item.counts["frames"], "wall": wall, "cpu": cpu, "detect_alone": detect_alone, **stages,
            "sum": sum(stages.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="video/pedestrians_1080p.mp4", help="path under $VEIL_DATA")
    ap.add_argument("--end", type=float, default=6.0, help="seconds of the clip (the pedestrians clip is 4.2 s)")
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--read-ahead", type=int, default=None,
                    help="frames decoded ahead on the reader's thread (0: decode inline, to A/B the thread alone)")
    args = ap.parse_args()
    if args.read_ahead is not None:
        import veil.io.video

        veil.io.video._READ_AHEAD = args.read_ahead
    from veil.api import Anonymizer

    src = Path(os.environ.get("VEIL_DATA", "../shared/data")) / args.clip
    anon = Anonymizer(preset=args.preset, end=args.end)
    runs = [profile_once(anon, src, args.end) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    load = os.getloadavg()[0]
    print(json.dumps({"clip": args.clip, "preset": args.preset, "read_ahead": args.read_ahead, "cpus": os.cpu_count(), "load1": round(load, 2),
                      "runs": args.repeat, "median_s": {k: round(v, 3) for k, v in med.items()}}))
    print(f"{'stage':<12}{'s (median)':>12}{'ms/frame':>10}")
    for k in ("decode", "rgb", "detect", "track", "policy", "render", "yuv", "encode", "sum", "wall", "cpu"):
        print(f"{k:<12}{med[k]:>12.2f}{1000 * med[k] / med['frames']:>10.1f}")


if __name__ == "__main__":
    main()
