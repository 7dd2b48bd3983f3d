"""Leaked face-frames on OTB "Boy" and its variants (bench/leaks.py): `fast` as it is vs `fast`
with the yunet+centerface cascade at 960 px, both detecting every 3rd frame with tracking.

    python bench/cascade_leaks.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from leaks import CLIP, TRUTH, variants, veil_leaks  # noqa: E402

from veil.eval.leaks import read_boxes  # noqa: E402
from veil.io.video import read_frames  # noqa: E402

DESIGNS = {"fast (CF 640)": dict(preset="fast"),
           "fast, yunet+centerface 960": dict(preset="fast", detector="yunet+centerface", max_side=960)}


def main() -> int:
    data = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data"))
    frames = list(read_frames(data / CLIP))
    truth = read_boxes(data / TRUTH)
    print("| clip | " + " | ".join(DESIGNS) + " |\n|---|" + "---|" * len(DESIGNS))
    for clip, (fr, tr) in variants(frames, truth).items():
        cells = []
        for settings in DESIGNS.values():
            r = veil_leaks(fr, tr, settings)
            cells.append(f"{r['leaked_frames']} ({100 * r['leak_rate']:.1f} %) / {r['longest_leak_run']}")
        print(f"| {clip} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
