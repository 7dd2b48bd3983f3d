"""Leaked face-frames on OTB "Boy" and its variants (bench/leaks.py): `fast` as it is vs `fast`
with the yunet+centerface cascade, all detecting every 3rd frame with tracking.

    python bench/cascade_leaks.py                               # every design below
    python bench/cascade_leaks.py --designs "fast (CF 640)" "fast, yunet+centerface 640"

Designs whose name ends in "windows on CF" run the windows around tracks (the frames between
full detections) on the cascade's CenterFace pass instead of its lead YuNet pass
(``veil.detect.merged.WINDOW_PASS``; CenterFace's is the default since §11.1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from leaks import CLIP, TRUTH, variants, veil_leaks  # noqa: E402

from veil.detect.merged import WINDOW_PASS  # noqa: E402
from veil.eval.leaks import read_boxes  # noqa: E402
from veil.io.video import read_frames  # noqa: E402

CASCADE = dict(preset="fast", detector="yunet+centerface")
DESIGNS = {"fast (CF 640)": dict(preset="fast"),
           "fast, yunet+centerface 960": dict(CASCADE, max_side=960),
           "fast, yunet+centerface 640": dict(CASCADE, max_side=640),
           "fast, yunet+centerface 960, windows on YN": dict(CASCADE, max_side=960, window_pass=0),
           "fast, yunet+centerface 640, windows on YN": dict(CASCADE, max_side=640, window_pass=0),
           "fast, yunet+centerface 960, windows on CF": dict(CASCADE, max_side=960, window_pass=1),
           "fast, yunet+centerface 640, windows on CF": dict(CASCADE, max_side=640, window_pass=1)}


def leaks(frames, truth, settings: dict) -> dict:
    settings = dict(settings)
    window = settings.pop("window_pass", None)
    if window is None:
        return veil_leaks(frames, truth, settings)
    saved = dict(WINDOW_PASS)
    WINDOW_PASS[settings["detector"]] = window  # read when the detector is built
    try:
        return veil_leaks(frames, truth, settings)
    finally:
        WINDOW_PASS.clear()
        WINDOW_PASS.update(saved)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--clips", nargs="+", default=None, help="only the variants whose name starts with these words (e.g. dark motion)")
    args = ap.parse_args(argv)
    data = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data"))
    frames = list(read_frames(data / CLIP))
    truth = read_boxes(data / TRUTH)
    print("| clip | " + " | ".join(args.designs) + " |\n|---|" + "---|" * len(args.designs), flush=True)
    for clip, (fr, tr) in variants(frames, truth).items():
        if args.clips and not any(clip.startswith(c) for c in args.clips):
            continue
        cells = []
        for name in args.designs:
            r = leaks(fr, tr, DESIGNS[name])
            cells.append(f"{r['leaked_frames']} ({100 * r['leak_rate']:.1f} %) / {r['longest_leak_run']}")
        print(f"| {clip} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
