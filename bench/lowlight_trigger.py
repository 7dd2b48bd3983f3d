"""Which frames does the low-light pass fire on, and does it help there?

The pass runs when a frame's thumbnail mean luma is below 50 (``LowLight.is_dark``). This
splits those frames by their bright end (99th luma percentile of the same thumbnail) and
counts, on the WIDER dev images the pass fires on, the valid faces found at the balanced
threshold with and without it -- by the protocol (IoU >= 0.5) and as a mask would (>= 80 %
of the face box under a detection box) -- and prints the percentile range of the dark
FairFace renders (where the pass was measured to help, docs/benchmarks.md §8), of the
naturally dark clean crops, and of a clip.

    python bench/lowlight_trigger.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

import veil
from veil.detect.lowlight import LowLight
from veil.eval.conditions import read_crops, render
from veil.eval.wider_run import load_set
from veil.eval.widerface import face_hits
from veil.io.images import read_image
from veil.io.video import read_frames
from veil.io.wider_format import faces_to_xywh

ROOT = Path(__file__).resolve().parents[1]
BRIGHT_END = 100.0  # the 99th-percentile split this script reports on


def luma_stats(rgb: np.ndarray) -> tuple[float, float]:
    """Mean and 99th percentile of luma on the thumbnail ``is_dark`` looks at."""
    luma = LowLight.thumbnail_luma(rgb)
    return float(luma.mean()), float(np.percentile(luma, 99))


def covered_faces(gt, xywh: np.ndarray, share: float = 0.8) -> int:
    """Valid faces of one image with at least ``share`` of their box under a detection box."""
    n = 0
    for (x, y, w, h), invalid in zip(gt.boxes, gt.invalid):
        if invalid:
            continue
        under = np.zeros((max(1, int(round(h))), max(1, int(round(w)))), bool)
        for bx, by, bw, bh in xywh:
            x0, y0 = max(0, int(round(bx - x))), max(0, int(round(by - y)))
            x1, y1 = min(under.shape[1], int(round(bx + bw - x))), min(under.shape[0], int(round(by + bh - y)))
            if x1 > x0 and y1 > y0:
                under[y0:y1, x0:x1] = True
        n += under.mean() >= share
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")))
    args = ap.parse_args()

    wset = load_set(args.data / "widerface-dev")
    on, off = veil.Anonymizer(), veil.Anonymizer(low_light=False)
    thr = on.config.detect.threshold
    level = on.config.detect.low_light_level
    groups: dict[str, list[str]] = {f"p99 < {BRIGHT_END:g}": [], f"p99 >= {BRIGHT_END:g}": []}
    p99s, preds = [], {"off": {}, "on": {}}
    for rel in wset.gt:
        rgb = read_image(wset.images / rel).rgb
        mean, p99 = luma_stats(rgb)
        if mean >= level:
            continue
        p99s.append(p99)
        groups[f"p99 < {BRIGHT_END:g}" if p99 < BRIGHT_END else f"p99 >= {BRIGHT_END:g}"].append(rel)
        preds["on"][rel] = faces_to_xywh(on.pipeline.detect([rgb])[0])
        preds["off"][rel] = faces_to_xywh(off.pipeline.detect([rgb])[0])
    print(f"WIDER dev: the pass fires on {len(p99s)} of {len(wset.gt)} images; their 99th luma percentiles: "
          f"{', '.join(f'{p:.0f}' for p in sorted(p99s))}")
    for name, rels in groups.items():
        valid = sum(int((~wset.gt[r].invalid).sum()) for r in rels)
        found, covered = {}, {}
        for mode in ("off", "on"):
            hits = face_hits({r: wset.gt[r] for r in rels}, preds[mode], thr)
            found[mode] = sum(int((hits[r] & ~wset.gt[r].invalid).sum()) for r in rels)
            covered[mode] = sum(covered_faces(wset.gt[r], preds[mode][r][0]) for r in rels)
        print(f"  {name}: {len(rels)} images, {valid} valid faces; without the pass / with it: "
              f"found at IoU >= 0.5 {found['off']} / {found['on']}, >= 80 % under a box {covered['off']} / {covered['on']}")

    crops, _ = read_crops(args.data / "fairface-dev")
    ff = np.array([luma_stats(render(np.asarray(Image.open(args.data / "fairface-dev" / c.file).convert("RGB")),
                                     c.file, "dark", None)) for c in crops])
    print(f"FairFace dark renders: {len(ff)} crops, {np.mean(ff[:, 0] < level):.0%} fire the pass, "
          f"99th percentile {ff[:, 1].min():.0f}-{ff[:, 1].max():.0f}")
    clean = np.array([luma_stats(np.asarray(Image.open(args.data / "fairface-dev" / c.file).convert("RGB"))) for c in crops])
    p99 = clean[clean[:, 0] < level, 1]
    print(f"FairFace clean crops that fire the pass: {len(p99)}; 99th percentile < 100: {int((p99 < 100).sum())}, "
          f"100-128: {int(((p99 >= 100) & (p99 < 128)).sum())}, >= 128: {int((p99 >= 128).sum())}")
    clip = args.data / "video" / "hamilton" / "short_hamilton_clip.mp4"
    if clip.exists():
        st = np.array([luma_stats(f) for f in list(read_frames(clip))[::10]])
        print(f"hamilton (every 10th frame): mean luma {np.median(st[:, 0]):.0f}, "
              f"99th percentile {st[:, 1].min():.0f}-{st[:, 1].max():.0f}")


if __name__ == "__main__":
    main()
