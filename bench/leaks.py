"""Leaked face-frames on OTB "Boy" and harder variants of it, veil vs deface.

A face-frame leaks when less than 80 % of the true face box is covered by the mask (see
``veil.eval.leaks``). Variants, made from the real clip with the ground truth transformed
alike: ``dark`` (gain 0.12 plus Gaussian sensor noise, sigma 4), ``small`` (frame scaled so
the face is about 20 px wide), ``motion`` (21-px horizontal motion blur). Modes: veil per
frame (no tracking), veil default (tracking + look-ahead), veil detecting every 3rd frame,
and deface 1.5.0 (its CenterFace at native resolution, threshold 0.2, its 1.3 ellipse mask;
and, to tell detection from mask geometry apart, its detections under veil's head mask).
Also times the end-to-end ``veil anonymize`` of the original clip per mode (decode, detect,
encode), which is what "faster end to end" means.

    python bench/leaks.py --data ../shared/data --update-doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import veil
from veil.eval.leaks import leak_report, read_boxes
from veil.faces import Faces
from veil.io.video import read_frames

ROOT = Path(__file__).resolve().parents[1]
CLIP = "video/otb_boy/boy_frames0001-0301_30fps.mp4"
TRUTH = "video/otb_boy/groundtruth_rect.txt"
MARK_START, MARK_END = "<!-- leaks:start -->", "<!-- leaks:end -->"

MODES = {
    "veil per frame (no tracking)": dict(tracking=False),
    "veil default (tracking + look-ahead)": dict(),
    "veil detect every 3rd frame": dict(detect_every=3),
}


def variants(frames: list[np.ndarray], truth: list) -> dict[str, tuple[list[np.ndarray], list]]:
    rng = np.random.default_rng(0)

    def dark(f):
        noisy = f.astype(np.float32) * 0.12 + rng.normal(0, 4, f.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    face_w = np.median([b[2] - b[0] for b in truth if b is not None])
    s = 20.0 / face_w
    h, w = frames[0].shape[:2]
    size = (round(w * s), round(h * s))
    kernel = np.zeros((21, 21), np.float32)
    kernel[10, :] = 1 / 21
    return {
        "original": (frames, truth),
        "dark + noise": ([dark(f) for f in frames], truth),
        f"small (face ~20 px, {size[0]}x{size[1]})": ([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames],
                                                    [None if b is None else b * s for b in truth]),
        "motion blur 21 px": ([cv2.filter2D(f, -1, kernel) for f in frames], truth),
    }


def veil_leaks(frames, truth, settings) -> dict:
    anon = veil.Anonymizer(**settings)
    faces = [r.faces for r in anon.pipeline.run(iter(frames), 30.0)]
    rc = anon.config.render
    return leak_report(faces, truth, frames[0].shape[:2], rc.shape, rc.mask_scale, head=rc.head).as_dict()


def deface_leaks(frames, truth) -> tuple[dict, dict]:
    """deface's detections with deface's mask, and (to separate detection from mask
    geometry) the same detections under veil's default head mask."""
    from deface.centerface import CenterFace

    cf = CenterFace(backend="onnxrt")
    faces = []
    for f in frames:
        dets, lms = cf(f, threshold=0.2)
        faces.append(Faces(xyxy=dets[:, :4], scores=dets[:, 4], landmarks=lms.reshape(-1, 5, 2))
                     if len(dets) else Faces.empty())
    hw = frames[0].shape[:2]
    return (leak_report(faces, truth, hw, "ellipse", 1.3, head=False).as_dict(),
            leak_report(faces, truth, hw, "ellipse", 1.5, head=True).as_dict())


def end_to_end(src: Path) -> dict[str, float]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in MODES.items():
            anon = veil.Anonymizer(**settings)
            t = time.perf_counter()
            anon.video(src, Path(tmp) / "o.mp4", overwrite=True)
            out[name] = time.perf_counter() - t
    return out


def render(table: dict, timing: dict) -> str:
    names = list(next(iter(table.values())))
    lines = ["Leaked face-frames (of 301) / longest leaked run, OTB Boy and variants:", "",
             "| clip | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for clip, row in table.items():
        cells = [f"{r['leaked_frames']} ({100 * r['leak_rate']:.1f} %) / {r['longest_leak_run']}" for r in row.values()]
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    lines += ["", "End to end `Anonymizer.video` on the original clip (decode, detect, encode; 301 frames 640x480):", "",
              "| mode | seconds | fps |", "|---|---|---|"]
    for name, t in timing.items():
        lines.append(f"| {name} | {t:.2f} | {301 / t:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--update-doc", type=Path, default=None)
    args = ap.parse_args()

    frames = list(read_frames(args.data / CLIP))
    truth = read_boxes(args.data / TRUTH)
    table: dict[str, dict] = {}
    for clip, (fr, tr) in variants(frames, truth).items():
        row = {name: veil_leaks(fr, tr, settings) for name, settings in MODES.items()}
        row["deface 1.5.0"], row["deface detections, veil's mask"] = deface_leaks(fr, tr)
        table[clip] = row
        print(clip, {k: (v["leaked_frames"], v["longest_leak_run"]) for k, v in row.items()}, flush=True)
    timing = end_to_end(args.data / CLIP)
    text = render(table, timing)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"leaks": table, "end_to_end_s": timing}, indent=1))
    if args.update_doc:
        doc = args.update_doc.read_text()
        i, j = doc.index(MARK_START) + len(MARK_START), doc.index(MARK_END)
        args.update_doc.write_text(doc[:i] + "\n" + text + "\n" + doc[j:])


if __name__ == "__main__":
    main()
