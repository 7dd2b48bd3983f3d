"""What an extra detection pass on the frame turned by 90 degrees finds and costs.

Faces can lie on their side in the scene itself (people lying down, a phone held sideways
by someone whose clip carries no rotation tag). veil turns tagged video upright
(:mod:`veil.io.orientation`), but the detector only finds roughly upright faces, so those
need another pass: the frame turned by 90 and/or 270 degrees (``DetectConfig.rotations``,
:func:`veil.detect.augment.turn_frame` / :func:`~veil.detect.augment.unturn`).

How. On a spread subset of the WIDER FACE dev split (:func:`veil.eval.wider_run.spread_subset`)
each image is detected four times -- as it is (D0) and turned clockwise by 90, 180 and 270
degrees (D90, D180, D270) -- by CenterFace at native resolution (``detect_at(scale=1)``,
raw detections >= 0.02, as in bench/mitigations.py), and every detection is mapped back
into the upright image, where the ground truth is. Turning by right angles loses no pixel,
so a *scene* turned by 90 degrees (every face lying on its side) is the same data seen
through D90; veil's native pass on it is D90, and its extra passes turn it back (D0) or
upside down (D180). So the combinations scored (passes merged by NMS at IoU 0.3, veil's):

=====================  ===================================  ==========================================
scene                  native pass                          + rotated passes 90 and 270
=====================  ===================================  ==========================================
upright (as WIDER is)  D0                                   D0 + D90 + D270 (false positives? AP?)
lying (turned 90 cw)   D90                                  D90 + D180 + D0
lying (turned 270 cw)  D270                                 D270 + D0 + D180
=====================  ===================================  ==========================================

(plus one-sided variants, e.g. only the 90 pass: it finds the faces lying one way.) Scored
with the official WIDER protocol (AP easy / medium / hard) and at veil's operating threshold
0.2: recall of the valid faces and false positives per image. Time = mean ms of detection per
pass per image (a turned image has the same pixels; the pass costs what the plain one does).

    python bench/rotated_pass.py                       # 80 images spread over the events, ~4 min on 2 loaded cores
    python bench/rotated_pass.py --limit 0             # the whole dev split (1,076 images), ~45 min on 2 loaded cores

Prints a Markdown table (for docs/benchmarks.md) and writes it with the raw numbers to
``--out`` (default /tmp/rotated_pass). Timings on shared cores are noisy; compare the passes
within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.config import DetectConfig  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.detect.augment import turn_frame, unturn  # noqa: E402
from veil.detect.nms import nms  # noqa: E402
from veil.eval.data import default_data  # noqa: E402
from veil.eval.wider_run import spread_subset  # noqa: E402
from veil.eval.widerface import evaluate, load_wider_dev, operating_point  # noqa: E402

MIN_SCORE = 0.02
THRESHOLD = DetectConfig().threshold
MERGE_IOU = DetectConfig().nms_iou
TURNS = (0, 90, 180, 270)

#: (scene, label, passes): the scene is the turn the faces lie at, passes the turns detected
#: on (in the *upright* image's terms; D(scene + r) is the pass that turns the scene by r)
COMBOS = (
    ("upright", "native", (0,)),
    ("upright", "native + 90", (0, 90)),
    ("upright", "native + 90 + 270", (0, 90, 270)),
    ("lying, turned 90", "native", (90,)),
    ("lying, turned 90", "native + 90", (90, 180)),
    ("lying, turned 90", "native + 270", (90, 0)),
    ("lying, turned 90", "native + 90 + 270", (90, 180, 0)),
    ("lying, turned 270", "native", (270,)),
    ("lying, turned 270", "native + 90 + 270", (270, 0, 180)),
    ("upside down", "native", (180,)),
    ("upside down", "native + 90 + 270", (180, 270, 90)),
)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def detect_all(det, images: Path, paths: list[str]) -> tuple[dict, dict]:
    """{turn: {image: (xyxy, scores) in upright pixels}}, {turn: [seconds per image]}."""
    dets: dict[int, dict] = {t: {} for t in TURNS}
    secs: dict[int, list[float]] = {t: [] for t in TURNS}
    for k, rel in enumerate(paths, 1):
        img = read_rgb(images / rel)
        h, w = img.shape[:2]
        for t in TURNS:
            frame = turn_frame(img, t) if t else img
            t0 = time.perf_counter()
            faces = det.detect_at(frame, 1.0, MIN_SCORE)
            secs[t].append(time.perf_counter() - t0)
            if t:
                faces = unturn(faces, t, w, h)
            dets[t][rel] = (faces.xyxy.astype(np.float64), faces.scores.astype(np.float64))
        if k % 20 == 0:
            print(f"  {k}/{len(paths)} images", file=sys.stderr)
    return dets, secs


def merged(dets: dict, turns: tuple[int, ...], paths: list[str]) -> dict:
    """Per image the passes merged by NMS, as (xywh, scores) for the evaluation."""
    out = {}
    for p in paths:
        xy = np.concatenate([dets[t][p][0] for t in turns]).reshape(-1, 4)
        sc = np.concatenate([dets[t][p][1] for t in turns])
        keep = nms(xy, sc, MERGE_IOU)
        xy, sc = xy[keep], sc[keep]
        out[p] = (np.concatenate([xy[:, :2], xy[:, 2:] - xy[:, :2]], 1), sc)
    return out


def turn_cost_ms(reps: int = 30) -> dict[str, float]:
    """Median ms to turn one RGB frame upright for display (what every frame of a 90-degree
    phone clip costs before detection), per frame size."""
    from veil.io.orientation import orientation_from_rotation

    out = {}
    turn = orientation_from_rotation(90)
    for w, h in ((1280, 720), (1920, 1080), (3840, 2160)):
        frame = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            turn.apply(frame)
            times.append(time.perf_counter() - t0)
        out[f"{w}x{h}"] = 1000 * float(np.median(times))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="VEIL_DATA (default: $VEIL_DATA or ../shared/data)")
    ap.add_argument("--limit", type=int, default=80, help="images spread over the events (0 = all)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/rotated_pass"))
    args = ap.parse_args(argv)

    data = args.data or default_data()
    gt, difficulty, images = load_wider_dev(data / "widerface-dev")
    paths = spread_subset(list(gt), args.limit or None)
    gt = {p: gt[p] for p in paths}
    difficulty = {p: difficulty[p] for p in paths}
    det = build_detector(DetectConfig(max_side=0, low_light=False), batch=1)
    print(f"{len(paths)} images, {sum(int(g.valid.sum()) for g in gt.values())} valid faces; detecting 4 turns each",
          file=sys.stderr)
    t0 = time.perf_counter()
    dets, secs = detect_all(det, images, paths)
    wall = time.perf_counter() - t0
    ms = {t: 1000 * float(np.mean(secs[t])) for t in TURNS}

    rows = []
    for scene, label, turns in COMBOS:
        preds = merged(dets, turns, paths)
        ev = evaluate(gt, preds, difficulty)
        op = operating_point(gt, preds, THRESHOLD)
        rows.append({"scene": scene, "passes": label, "turns": list(turns), "ms": sum(ms[t] for t in turns),
                     "ap": ev["ap"], "recall": op["recall"], "fp_per_image": op["fp"] / len(paths)})

    n_faces = sum(int(g.valid.sum()) for g in gt.values())
    lines = [
        f"WIDER FACE dev, {len(paths)} images spread over the events ({n_faces} valid faces), CenterFace at native "
        f"resolution, passes merged by NMS IoU {MERGE_IOU}; recall and FP at threshold {THRESHOLD}. Detection ms / image "
        f"per pass (2 shared, loaded cores: noisy): " + ", ".join(f"{t}° {ms[t]:.0f}" for t in TURNS) + ".",
        "",
        "| faces in the scene | passes | ms / image | AP easy | AP medium | AP hard | recall @0.2 | FP / image @0.2 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a = r["ap"]
        lines.append(f"| {r['scene']} | {r['passes']} | {r['ms']:.0f} | {a['easy']:.3f} | {a['medium']:.3f} | "
                     f"{a['hard']:.3f} | {100 * r['recall']:.1f} | {r['fp_per_image']:.2f} |")
    turn_ms = turn_cost_ms()
    lines += ["", "Turning a frame of a 90-degree phone clip for display (before detection, every frame; median ms): "
              + ", ".join(f"{k} {v:.1f}" for k, v in turn_ms.items()) + "."]
    md = "\n".join(lines)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rotated_pass.md").write_text(md + "\n")
    meta = {"images": len(paths), "valid_faces": n_faces, "ms_per_pass": ms, "turn_ms": turn_ms, "wall_s": wall,
            "cpu": platform.processor() or platform.machine(), "command": " ".join(sys.argv)}
    (args.out / "rotated_pass.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.out}/rotated_pass.md and .json ({wall:.0f} s of detection)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
