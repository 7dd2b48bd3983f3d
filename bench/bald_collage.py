"""Bald heads under the capture conditions of ``veil eval conditions``, on the one bald image we have.

``$VEIL_DATA/bald/bald_guys.jpg`` is an unlabelled collage of photos of four bald men. There is
no ground truth, so the reference is derived and checked by eye:

1. the detector (balanced preset, native resolution) runs on the full-resolution collage; the
   detections scoring >= ``--ref-score`` (0.7) are the reference faces: one per photo, the
   subject's face (checked by looking at ``build/bald/reference.png``, which draws every
   detection >= 0.1 with its index and score; the lower-scoring ones are out-of-focus
   bystanders in one photo's background, not the subjects);
2. the whole collage is rendered with the conditions suite's functions
   (:mod:`veil.eval.conditions`): ``small`` (the collage scaled so that the median reference
   face is N px wide), ``dark`` (linear-light gain, shot and read noise), ``defocus`` and
   ``motion`` (their level is relative to a FairFace crop's width, 224 px for a 184-px face, so
   it is applied at the same size relative to the face here), ``jpeg``, and two combinations;
3. a reference face counts as found when a detection >= the threshold (0.2) overlaps its
   (scaled) box with IoU >= 0.4 (the suite's ``MATCH_IOU``), with the product's preset, the
   low-light pass on and off.

Prints a Markdown table (recall with exact 95 % intervals) and writes ``--out``/bald.json; with
``--figure`` a plot of recall per condition next to the FairFace suite's numbers (no pixels);
with ``--boxes`` every render with its detections under ``build/bald/`` for looking at (dataset
pixels: never commit those).

    python bench/bald_collage.py --out build/bald --figure docs/figures/bald_collage.png --boxes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.boxes import box_iou  # noqa: E402
from veil.eval.conditions import FACE_BOX, MATCH_IOU, render  # noqa: E402
from veil.eval.data import default_data  # noqa: E402
from veil.eval.privacy_report import clopper_pearson  # noqa: E402
from veil.io.images import read_image  # noqa: E402

COLLAGE = "bald_guys.jpg"
LOW_SCORE = 0.02  # the WIDER protocol's lowest score (veil detect --min-score 0.02)
FAIRFACE_FACE_FRACTION = FACE_BOX[2] - FACE_BOX[0]  # face width / crop width in a FairFace crop

#: (label, [(condition, level), ...]) applied in order; levels as in ``veil eval conditions``,
#: except ``small`` (px of the median reference face) and ``scale`` (the same, without noise).
RENDERS: list[tuple[str, list[tuple[str, float | None]]]] = [
    ("clean (full resolution)", []),
    ("small: 48 px", [("small", 48)]),
    ("small: 32 px", [("small", 32)]),
    ("small: 24 px", [("small", 24)]),
    ("small: 20 px (suite)", [("small", 20)]),
    ("small: 16 px", [("small", 16)]),
    ("small: 12 px", [("small", 12)]),
    ("dark: 0.05", [("dark", 0.05)]),
    ("dark: 0.025 (suite)", [("dark", 0.025)]),
    ("dark: 0.0125", [("dark", 0.0125)]),
    ("dark: 0.006", [("dark", 0.006)]),
    ("dark: 0.003", [("dark", 0.003)]),
    ("defocus: 0.04 (suite)", [("defocus", 0.04)]),
    ("motion: 0.12 (suite)", [("motion", 0.12)]),
    ("jpeg: 10 (suite)", [("jpeg", 10)]),
    ("small 32 px + dark 0.025", [("small", 32), ("dark", 0.025)]),
    ("small 32 px + dark 0.025 + defocus 0.04", [("small", 32), ("dark", 0.025), ("defocus", 0.04)]),
    ("small 20 px + dark 0.025", [("small", 20), ("dark", 0.025)]),
    ("small 16 px + dark 0.0125", [("small", 16), ("dark", 0.0125)]),
    ("small 16 px + dark 0.006", [("small", 16), ("dark", 0.006)]),
]

#: FairFace suite, preset balanced with the low-light pass (docs/benchmarks.md §8.3): all / Black.
FAIRFACE = {"small: 20 px (suite)": (99.3, 99.7), "dark: 0.025 (suite)": (98.7, 96.9),
            "defocus: 0.04 (suite)": (99.7, 99.7), "motion: 0.12 (suite)": (96.4, 94.6),
            "jpeg: 10 (suite)": (96.3, 93.6), "clean (full resolution)": (99.9, 100.0)}


def apply(rgb: np.ndarray, steps, face_w: float) -> tuple[np.ndarray, float]:
    """The collage under ``steps``; returns it and the scale applied to its geometry."""
    scale = 1.0
    for name, level in steps:
        if name == "small":
            s = float(level) / face_w
            rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))),
                             interpolation=cv2.INTER_AREA)
            scale *= s
            face_w *= s
        elif name in ("defocus", "motion"):
            # the suite's level is relative to a crop whose face is FAIRFACE_FACE_FRACTION of its width
            rel = float(level) * (face_w / FAIRFACE_FACE_FRACTION) / rgb.shape[1]
            rgb = render(rgb, COLLAGE, name, rel)
        else:
            rgb = render(rgb, COLLAGE, name, level)
    return rgb, scale


def found(det_xyxy: np.ndarray, det_scores: np.ndarray, ref: np.ndarray, threshold: float) -> np.ndarray:
    """Per reference box, whether a detection >= threshold overlaps it with IoU >= MATCH_IOU."""
    keep = det_scores >= threshold
    if not keep.any():
        return np.zeros(len(ref), bool)
    return (box_iou(ref, det_xyxy[keep]) >= MATCH_IOU).any(axis=1)


def draw(rgb: np.ndarray, faces, ref: np.ndarray, hit: np.ndarray, path: Path, threshold: float) -> None:
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    zoom = max(1.0, 800 / out.shape[1])
    out = cv2.resize(out, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    for b, ok in zip((ref * zoom).astype(int), hit):
        cv2.rectangle(out, tuple(b[:2]), tuple(b[2:]), (0, 200, 0) if ok else (0, 0, 255), 2)
    for b, s in zip((faces.xyxy * zoom).astype(int), faces.scores):
        if s >= threshold:
            cv2.rectangle(out, tuple(b[:2]), tuple(b[2:]), (255, 160, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), out)


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["render"] for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(rows) + 1.8))
    rec = np.array([r["recall_on"] for r in rows]) * 100
    lo = np.array([r["ci_on"][0] for r in rows]) * 100
    hi = np.array([r["ci_on"][1] for r in rows]) * 100
    ax.barh(y, rec, color="#4C72B0", label="bald collage, 24 faces (95 % CI)")
    ax.errorbar(rec, y, xerr=[rec - lo, hi - rec], fmt="none", ecolor="k", capsize=2, lw=1)
    off = np.array([r["recall_off"] for r in rows]) * 100
    ax.plot(off, y, "x", color="#C44E52", ms=6, label="bald collage, low-light pass off")
    ff = [FAIRFACE.get(lab) for lab in labels]
    for k, v in enumerate(ff):
        if v:
            ax.plot(v[0], k, "D", color="#DD8452", ms=5, label="FairFace suite (§8.3), all groups" if k == 0 else None)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 102)
    ax.set_xlabel("recall % (balanced, threshold 0.2, low-light pass on unless marked)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.4, -0.1), ncol=2)
    ax.set_title("Bald heads under the conditions suite's renders", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data("bald"))
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bald")
    ap.add_argument("--ref-score", type=float, default=0.7)
    ap.add_argument("--threshold", type=float, default=0.2)
    ap.add_argument("--figure", type=Path, help="recall plot (no pixels)")
    ap.add_argument("--boxes", action="store_true", help="draw every render with its boxes under --out (dataset pixels)")
    ap.add_argument("--replot", action="store_true", help="only redraw --figure from --out/bald.json")
    args = ap.parse_args(argv)
    if args.replot:
        figure(json.loads((args.out / "bald.json").read_text())["rows"], args.figure)
        return 0

    import veil

    rgb = read_image(args.data / COLLAGE).rgb
    native = veil.Anonymizer(max_side=0)
    all_faces = native.detect(rgb, min_score=0.1)
    ref = all_faces.xyxy[all_faces.scores >= args.ref_score]
    ref = ref[np.lexsort((ref[:, 0], ref[:, 1]))]
    face_w = float(np.median(ref[:, 2] - ref[:, 0]))
    print(f"reference: {len(ref)} faces >= {args.ref_score} at full resolution ({rgb.shape[1]}x{rgb.shape[0]}), "
          f"median width {face_w:.0f} px; {int((all_faces.scores < args.ref_score).sum())} weaker detections >= 0.1")
    if args.boxes:
        draw(rgb, all_faces, ref, np.ones(len(ref), bool), args.out / "reference.png", 0.1)

    anon = {True: veil.Anonymizer(), False: veil.Anonymizer(low_light=False)}
    rows = []
    for label, steps in RENDERS:
        img, scale = apply(rgb, steps, face_w)
        r = {"render": label, "size": [img.shape[1], img.shape[0]], "faces": len(ref), "scale": scale}
        for on in (True, False):
            t0 = time.perf_counter()
            faces = anon[on].detect(img)
            ms = (time.perf_counter() - t0) * 1000
            hit = found(faces.xyxy, faces.scores, ref * scale, args.threshold)
            k = int(hit.sum())
            tag = "on" if on else "off"
            r[f"found_{tag}"], r[f"recall_{tag}"] = k, k / len(ref)
            r[f"ci_{tag}"] = list(clopper_pearson(k, len(ref)))
            r[f"missed_{tag}"] = [int(i) for i in np.flatnonzero(~hit)]
            r[f"ms_{tag}"] = round(ms)
            if args.boxes and on:
                draw(img, faces, ref * scale, hit, args.out / f"{len(rows):02d}.png", args.threshold)
        # a miss with a detection just under the threshold is a threshold / NMS question, not a feature one
        low = anon[True].detect(img, min_score=LOW_SCORE)
        r["found_low_on"] = int(found(low.xyxy, low.scores, ref * scale, LOW_SCORE).sum())
        rows.append(r)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bald.json").write_text(json.dumps({"reference_faces": len(ref), "median_face_px": face_w,
                                                     "reference_width_px": [round(float(w)) for w in ref[:, 2] - ref[:, 0]],
                                                     "threshold": args.threshold, "rows": rows}, indent=1))
    print(f"\nBald collage ({len(ref)} reference faces), preset balanced, threshold {args.threshold}; "
          "found / recall % (exact 95 % CI); low-light pass on (default) | off; FairFace suite all / Black (§8.3)\n")
    print("| render | image px | found, pass on | recall % (95 % CI) | found at score >= 0.02 | found, pass off | "
          "FairFace all / Black |")
    print("|---|---|---:|---|---:|---:|---|")
    for r in rows:
        ff = FAIRFACE.get(r["render"])
        lo, hi = r["ci_on"]
        print(f"| {r['render']} | {r['size'][0]}x{r['size'][1]} | {r['found_on']} / {r['faces']} | "
              f"{100 * r['recall_on']:.0f} ({100 * lo:.0f}–{100 * hi:.0f}) | {r['found_low_on']} / {r['faces']} | "
              f"{r['found_off']} / {r['faces']} | "
              f"{f'{ff[0]} / {ff[1]}' if ff else '–'} |")
    if args.figure:
        figure(rows, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
