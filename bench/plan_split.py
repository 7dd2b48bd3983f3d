"""Two steps vs one pass: ``analyze`` + ``render`` against ``anonymize`` on the same clip.

Each round runs, in this process with the models loaded before the clock starts: one-pass
``Anonymizer.video``, then ``Anonymizer.analyze`` (decode, detect, track, decide; the plan
saved as JSON) and ``Anonymizer.render`` (decode, draw the plan, encode). Rounds alternate and
the median of each is reported, with the plan's size per minute of video. The rendered and
one-pass outputs are checked to be the same file bytes.

    python bench/plan_split.py --clip video/pedestrians_1080p.mp4 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil import Anonymizer  # noqa: E402
from veil.plan import load_plan, save_plan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="video/pedestrians_1080p.mp4")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    src = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")) / args.clip
    one, two_a, two_r = Anonymizer(), Anonymizer(), None
    times = {"one pass": [], "analyze": [], "render": [], "analyze + render": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _ in range(args.repeat):
            t = time.perf_counter()
            one.video(src, tmp / "one.mp4", overwrite=True)
            times["one pass"].append(time.perf_counter() - t)
            t = time.perf_counter()
            plan = two_a.analyze(src)
            save_plan(plan, tmp / "plan.json")
            ta = time.perf_counter() - t
            if two_r is None:
                two_r = Anonymizer.for_plan(plan)
            t = time.perf_counter()
            two_r.render(src, load_plan(tmp / "plan.json"), tmp / "two.mp4", overwrite=True)
            tr = time.perf_counter() - t
            times["analyze"].append(ta)
            times["render"].append(tr)
            times["analyze + render"].append(ta + tr)
        same = (tmp / "one.mp4").read_bytes() == (tmp / "two.mp4").read_bytes()
        size = (tmp / "plan.json").stat().st_size
    info = plan.input
    minutes = info.frames / (info.fps or 30) / 60
    n_faces = sum(len(t.frames) for t in plan.tracks)
    print(f"{args.clip}: {info.frames} frames {info.width}x{info.height}, {len(plan.tracks)} tracks, "
          f"{n_faces} face-frames; outputs identical: {same}")
    print("| step | median s | runs |\n|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.2f} | {', '.join(f'{x:.2f}' for x in v)} |")
    ratio = statistics.median(times["analyze + render"]) / statistics.median(times["one pass"])
    print(f"ratio (analyze + render) / one pass: {ratio:.3f}")
    print(f"plan: {size} bytes = {size / minutes / 1e6:.2f} MB per minute of this video "
          f"({size / max(n_faces, 1):.0f} bytes per face-frame)")


if __name__ == "__main__":
    main()
