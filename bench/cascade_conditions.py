"""FairFace crops under the dark (and clean, small) conditions: recall per race, CenterFace vs
the yunet+centerface cascade, each with the low-light pass as the presets run it.

    python bench/cascade_conditions.py --limit 700

Same renders as ``veil eval conditions`` (seeded per crop); recall at threshold 0.2 of a
detection overlapping the nominal face box (:data:`veil.eval.conditions.FACE_BOX`, which was
measured on CenterFace's boxes, so it slightly favours CenterFace).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.config import DetectConfig  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.eval.conditions import expected_box, found_in, read_crops, render  # noqa: E402
from veil.eval.data import default_data  # noqa: E402

DETECTORS = ("centerface", "yunet+centerface")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data("fairface-dev"))
    ap.add_argument("--limit", type=int, default=700, help="about this many crops, spread over the list")
    ap.add_argument("--conditions", nargs="+", default=["clean", "dark", "small"])
    ap.add_argument("--threshold", type=float, default=0.2)
    ap.add_argument("--max-side", type=int, default=960, help="detection resolution (the 224 px crops run natively at >= 448)")
    args = ap.parse_args(argv)
    crops, _ = read_crops(args.data, ["race"])
    crops = crops[:: max(1, len(crops) // args.limit)]
    dets = {n: build_detector(DetectConfig(detector=n, max_side=args.max_side), batch=1) for n in DETECTORS}
    hits: dict = defaultdict(lambda: [0, 0])
    for crop in crops:
        rgb = cv2.cvtColor(cv2.imread(str(args.data / crop.file)), cv2.COLOR_BGR2RGB)
        for cond in args.conditions:
            level = 20.0 if cond == "small" else None
            img = render(rgb, crop.file, cond, level)
            box = expected_box(rgb.shape[:2], cond, level, img.shape[:2])
            for n, d in dets.items():
                ok = found_in(d.detect([img], args.threshold)[0], box, args.threshold)
                for key in ((n, cond, crop.groups["race"]), (n, cond, "all")):
                    hits[key][0] += ok
                    hits[key][1] += 1
    races = sorted({k[2] for k in hits} - {"all"}) + ["all"]
    print(f"FairFace dev, {len(crops)} crops, threshold {args.threshold}; recall % (found / crops)\n")
    print("| condition | detector | " + " | ".join(races) + " | lowest |")
    print("|---|---|" + "---:|" * (len(races) + 1))
    for cond in args.conditions:
        for n in dets:
            vals = {r: hits[(n, cond, r)] for r in races}
            low = min((100 * a / b, r) for r, (a, b) in vals.items() if r != "all" and b)
            print(f"| {cond} | {n} | " + " | ".join(f"{100 * a / max(b, 1):.1f}" for a, b in vals.values()) + f" | {low[1]} {low[0]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
