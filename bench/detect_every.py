"""Detect every k-th frame vs every frame: end-to-end time on the evaluation clips.

For each clip, ``Anonymizer.video`` (decode, detect, track, render, encode; the model loaded
before the clock starts) with the default settings, with ``detect_every=3`` (windows around
the tracks on the frames in between, the default of that mode) and with ``detect_every=3,
roi_between=False`` (only coasting and interpolation in between). Run it on a quiet machine:
the three modes of a clip alternate, ``--repeat`` rounds, and the median of each is reported
(single runs on 2 shared cores vary by +-10 %).

    python bench/detect_every.py --repeat 3      # prints a Markdown table
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

import veil  # noqa: E402

CLIPS = ("video/otb_boy/boy_frames0001-0301_30fps.mp4", "video/hamilton/short_hamilton_clip.mp4", "video/pedestrians_1080p.mp4")
MODES = {"every frame": {}, "every 3rd": {"detect_every": 3}, "every 3rd, no windows": {"detect_every": 3, "roi_between": False}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    args = ap.parse_args()
    print("| clip | frames | " + " | ".join(f"{m} (s)" for m in MODES) + " | speed-up, every 3rd |")
    print("|---|---:|" + "---:|" * (len(MODES) + 1))
    anons = {name: veil.Anonymizer(**settings) for name, settings in MODES.items()}
    for rel in CLIPS:
        src = args.data / rel
        runs: dict[str, list[float]] = {m: [] for m in MODES}
        frames = 0
        for _ in range(max(1, args.repeat)):
            for name, anon in anons.items():
                with tempfile.TemporaryDirectory() as tmp:
                    t = time.perf_counter()
                    item = anon.video(src, Path(tmp) / "o.mp4")
                    runs[name].append(time.perf_counter() - t)
                frames = item.extra["video"]["frames"]
        secs = {m: statistics.median(v) for m, v in runs.items()}
        cells = " | ".join(f"{secs[m]:.2f}" for m in MODES)
        print(f"| {src.name} | {frames or '–'} | {cells} | {secs['every frame'] / secs['every 3rd']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
