"""Segmented vs local throughput on a 1080p clip built from the shared pedestrians clip.

Builds (in a tmp dir, never in the repository) a ``--minutes`` long 1920x1080 25 fps clip by
looping ``video/pedestrians_1080p.mp4`` (real faces walking towards the camera) with a
keyframe every 2 s and AAC audio, then:

* **full length**: the packet scan, and the join alone (the clip cut into ``--segment-s``
  pieces by stream copy, then :func:`veil.engine.join.join_segments`), so the costs that
  grow with the whole file are measured on the whole file;
* **the first ``--seconds``** (cut at a keyframe by stream copy): the local path
  (``Anonymizer.video``), segmented with the serial LocalExecutor (phase times, and the
  detector's own time inside the detect phase), segmented with a ProcessExecutor of
  ``--workers``; and a decode-only pass, to split decode from detect and encode.

    python bench/segments.py --minutes 2 --seconds 12 --segment-s 4 --workers 2

Timings on a shared, loaded machine are noisy: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run(cmd: list[str]) -> None:
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", *cmd], check=True)


def build(data: Path, dst: Path, minutes: float) -> None:
    src = data / "video" / "pedestrians_1080p.mp4"
    run(["-stream_loop", "-1", "-i", str(src), "-t", str(minutes * 60), "-c:v", "libx264", "-preset", "veryfast",
         "-crf", "20", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(dst)])


def cut_piece(src: Path, dst: Path, layout, seg) -> Path:
    """Frames ``seg.first .. seg.end - 1`` of ``src`` by stream copy, times rebased to 0: what a
    render task writes, without decoding or encoding (to time the join alone)."""
    import av

    lo, hi = layout.pts[seg.first], layout.pts[seg.end] if seg.end < layout.frames else None
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.size == 0 or packet.pts < lo or (hi is not None and packet.pts >= hi):
                continue
            packet.pts -= lo
            packet.dts -= lo
            packet.stream = vout
            out.mux(packet)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=12.0, help="length of the slice processed end to end")
    ap.add_argument("--segment-s", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clip", type=Path, default=None, help="reuse (or build here) the long clip")
    ap.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = ap.parse_args()

    from veil.api import Anonymizer
    from veil.config import preset
    from veil.engine import segment_tasks
    from veil.engine.join import join_segments
    from veil.engine.keyframes import plan_segments, scan
    from veil.engine.segments import LocalExecutor, ProcessExecutor, run_segmented
    from veil.io.video import decode_video

    data = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data"))
    res: dict = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()}}
    cfg = preset("balanced")
    with tempfile.TemporaryDirectory(prefix="veil-bench-seg-") as tmp:
        tmp = Path(tmp)
        clip = args.clip or tmp / "long.mp4"
        if not clip.exists():
            t = time.perf_counter()
            build(data, clip, args.minutes)
            res["build_s"] = time.perf_counter() - t

        # -- whole file: scan and join --------------------------------------------------
        t = time.perf_counter()
        layout = scan(clip)
        res["full"] = {"frames": layout.frames, "scan_s": time.perf_counter() - t}
        pieces = tmp / "pieces"
        pieces.mkdir()
        segs = plan_segments(layout, args.segment_s)
        parts = [(cut_piece(clip, pieces / f"p{s.number:04d}.mp4", layout, s), s.first) for s in segs]
        t = time.perf_counter()
        join_segments(parts, layout, clip, tmp / "joined.mp4", cfg.video)
        res["full"].update(join_s=time.perf_counter() - t, segments=len(parts))

        # -- a slice end to end --------------------------------------------------------------
        part = tmp / "slice.mp4"
        run(["-i", str(clip), "-t", str(args.seconds), "-c", "copy", str(part)])
        n = scan(part).frames
        res["slice"] = {"frames": n}
        t = time.perf_counter()
        for _ in decode_video(part, cfg.video):
            pass
        res["slice"]["decode_only_s"] = time.perf_counter() - t

        anon = Anonymizer(cfg)
        t = time.perf_counter()
        anon.video(part, tmp / "local.mp4")
        res["slice"]["local_s"] = time.perf_counter() - t
        res["slice"]["local_detect_s"] = anon.pipeline.timings.detect

        pipe = segment_tasks.pipeline_for(cfg)
        d0 = pipe.timings.detect
        got = run_segmented(part, tmp / "serial.mp4", cfg, LocalExecutor(), segment_s=args.segment_s)
        res["slice"]["serial"] = {**got.seconds, "segments": len(got.segments),
                                  "detector_s": pipe.timings.detect - d0}
        with ProcessExecutor(args.workers) as pool:
            got = run_segmented(part, tmp / "pool.mp4", cfg, pool, segment_s=args.segment_s)
        res["slice"]["pool"] = {**got.seconds, "workers": args.workers}
    res["load_after"] = os.getloadavg()
    text = json.dumps(res, indent=1, default=float)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
