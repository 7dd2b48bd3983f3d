"""YuNet-n and CenterFace, alone and combined, on the WIDER FACE dev split: AP, recall, cost.

Each *pass* (one detector at one input size) runs once per image on a one-thread
onnxruntime session, its network + decode time measured; the passes run in a rotating order
(image k starts with pass k mod n), so that a change in machine load hits them all alike.
A *design* is a set of passes merged by NMS (IoU 0.3, as veil's detectors merge): its
detections are the NMS of its passes' detections, its cost the sum of its passes' times.
This is what a pipeline running those passes one after the other would do and pay.

    python bench/cascade.py --group fast --limit 200 --out /tmp/cascade_fast
    python bench/cascade.py --group thorough --limit 100 --out /tmp/cascade_thorough

``--minutes`` stops early (images are visited in a seeded random order of the spread subset,
so a partial run is still spread over the events) and the report says how many images were
done. Low-light passes are off in every design (they fire on dark frames only and would blur
the comparison of the networks). ``--from-raw`` re-scores the detections a run saved in
``--out`` (after a change of designs or of YuNet's score calibration) without re-running.
Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.detect import DETECTORS  # noqa: E402
from veil.detect.augment import MAX_PASS_SIDE  # noqa: E402
from veil.detect.nms import nms  # noqa: E402
from veil.detect.onnx_runtime import load_session  # noqa: E402
from veil.detect.yunet import SCORE_POWER  # noqa: E402
from veil.eval.data import default_data  # noqa: E402
from veil.eval.wider_run import spread_subset  # noqa: E402
from veil.eval.widerface import SETTINGS, evaluate, load_wider_dev, operating_point  # noqa: E402
from veil.faces import Faces  # noqa: E402
from veil.io.wider_format import faces_to_xywh  # noqa: E402
from veil.models import resolve_model  # noqa: E402

MIN_SCORE = 0.02  # PR-curve floor, as veil eval widerface
THRESHOLDS = (0.2, 0.3, 0.5)
NMS_IOU = 0.3

#: pass name -> (detector, how the frame is sized: "side:N" long side N px, "x:F" F x native)
PASSES = {
    "cf@1280": ("centerface", "side:1280"), "cf@640": ("centerface", "side:640"), "cf@480": ("centerface", "side:480"), "cf@320": ("centerface", "side:320"),
    "cf@x1": ("centerface", "x:1"), "cf@x0.5": ("centerface", "x:0.5"), "cf@x1.5": ("centerface", "x:1.5"),
    "yn@1280": ("yunet", "side:1280"), "yn@960": ("yunet", "side:960"), "yn@640": ("yunet", "side:640"), "yn@x1": ("yunet", "x:1"),
    "yn@x1.5": ("yunet", "x:1.5"), "yn@x2": ("yunet", "x:2"),
}

#: design name -> its passes. The first of each group is today's preset detector.
GROUPS = {
    "fast": {
        "CF 1280 (balanced)": ["cf@1280"],
        "CF 640 (fast)": ["cf@640"],
        "YN 1280": ["yn@1280"],
        "YN 640": ["yn@640"],
        "YN 1280 + CF 640 (yunet+centerface at 1280)": ["yn@1280", "cf@640"],
        "YN 640 + CF 640": ["yn@640", "cf@640"],
        "YN 960": ["yn@960"],
        "YN 1280 + CF 320": ["yn@1280", "cf@320"],
        "YN 960 + CF 320": ["yn@960", "cf@320"],
        "YN 960 + CF 480 (yunet+centerface at 960)": ["yn@960", "cf@480"],
        "YN 640 + CF 320": ["yn@640", "cf@320"],
    },
    "thorough": {
        "CF x1 +x0.5 +x1.5 (thorough)": ["cf@x1", "cf@x0.5", "cf@x1.5"],
        "CF x1": ["cf@x1"],
        "CF x1 +x0.5 + YN x2": ["cf@x1", "cf@x0.5", "yn@x2"],
        "CF x1 + YN x2": ["cf@x1", "yn@x2"],
        "CF x1 +x0.5 + YN x1.5": ["cf@x1", "cf@x0.5", "yn@x1.5"],
        "CF x1 +x0.5 +x1.5 + YN x2": ["cf@x1", "cf@x0.5", "cf@x1.5", "yn@x2"],
        "YN x1 +x2 + CF x0.5": ["yn@x1", "yn@x2", "cf@x0.5"],
    },
    # every pass bench/thorough_fusion.py combines (its designs are scored there, on split halves)
    "fusion": {
        "CF x1 +x0.5 +x1.5 (thorough)": ["cf@x1", "cf@x0.5", "cf@x1.5"],
        "CF x1 +x0.5 + YN x1 +x1.5 +x2": ["cf@x1", "cf@x0.5", "yn@x1", "yn@x1.5", "yn@x2"],
    },
}


def pass_scale(how: str, h: int, w: int) -> float:
    kind, value = how.split(":")
    if kind == "side":
        return min(1.0, float(value) / max(h, w))  # never upscaled, as max_side
    return min(float(value), MAX_PASS_SIDE / max(h, w))  # capped, as the thorough passes


def build(name: str):
    path, digest = resolve_model(name)
    cls = DETECTORS[name]
    session = load_session(path, "cpu", getattr(cls, "dynamic_inputs", None), getattr(cls, "dynamic_outputs", None), threads=1)
    return cls(session, digest, max_side=0, nms_iou=NMS_IOU, batch=1)


def merged(parts: list[Faces], w: int, h: int) -> Faces:
    faces = Faces.concatenate(parts)
    return faces[nms(faces.xyxy, faces.scores, NMS_IOU)].clipped(w, h)


def run(paths: list[str], images: Path, passes: list[str], minutes: float | None,
        on_image: Callable[[int], None]) -> tuple[list[str], dict, dict, dict]:
    dets = {n: build(n) for n in {PASSES[p][0] for p in passes}}
    found: dict[str, dict[str, Faces]] = {p: {} for p in passes}
    secs: dict[str, list[float]] = {p: [] for p in passes}
    done: list[str] = []
    sizes: dict[str, tuple[int, int]] = {}
    t_start = time.perf_counter()
    for k, rel in enumerate(paths):
        if minutes and time.perf_counter() - t_start > minutes * 60:
            break
        bgr = cv2.imread(str(images / rel), cv2.IMREAD_COLOR)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        h, w = rgb.shape[:2]
        same: dict[tuple[str, float], str] = {}  # a pass equal to an earlier one (e.g. 1280 = x1) is not run twice
        order = passes[k % len(passes):] + passes[:k % len(passes)]
        for p in order:
            name, how = PASSES[p]
            s = pass_scale(how, h, w)
            twin = same.get((name, round(s, 4)))
            if twin is not None:
                found[p][rel] = found[twin][rel]
                secs[p].append(None)  # filled below with the twin's time
                continue
            same[(name, round(s, 4))] = p
            t0 = time.perf_counter()
            found[p][rel] = dets[name].detect_at(rgb, s, MIN_SCORE)
            secs[p].append(time.perf_counter() - t0)
        for p in passes:
            if secs[p][-1] is None:
                name, how = PASSES[p]
                twin = same[(name, round(pass_scale(how, h, w), 4))]
                secs[p][-1] = secs[twin][-1]
        done.append(rel)
        sizes[rel] = (h, w)
        on_image(len(done))
    return done, found, secs, sizes


def at_fp(gt, preds, difficulty, fp_max: float) -> dict:
    """The lowest threshold whose false positives stay within ``fp_max``, and recall there:
    designs whose scores are on different scales compared at the same false-alarm rate."""
    scores = np.unique(np.concatenate([s for _, s in preds.values()]))[::-1]
    lo, hi, best = 0, len(scores) - 1, None
    while lo <= hi:  # false positives grow as the threshold falls
        mid = (lo + hi) // 2
        op = operating_point(gt, preds, float(scores[mid]))
        if op["fp"] <= fp_max:
            best, lo = (float(scores[mid]), op), mid + 1
        else:
            hi = mid - 1
    if best is None:
        return {"threshold": None}
    thr, op = best
    return {"threshold": thr, "recall_valid": op["recall"], "fp_per_image": op["fp"] / len(gt),
            **{f"recall_{s}": operating_point(gt, preds, thr, difficulty, s)["recall"] for s in SETTINGS}}


def fmt(x) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data("widerface-dev"), help="widerface-dev folder (default: $VEIL_DATA/widerface-dev)")
    ap.add_argument("--group", choices=list(GROUPS), default="fast")
    ap.add_argument("--limit", type=int, default=200, help="images, spread over the events")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this long (report covers the images done)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/cascade"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard", default="0/1", help="K/N: run only every N-th image of the order, from the K-th "
                    "(N processes on N cores; bench/thorough_fusion.py joins their raw.pkl)")
    ap.add_argument("--from-raw", action="store_true", help="re-score the detections a previous run saved in --out (raw.pkl)")
    args = ap.parse_args(argv)
    if args.out.resolve().is_relative_to(ROOT.resolve()):
        ap.error(f"--out must be outside the repository ({ROOT})")
    args.out.mkdir(parents=True, exist_ok=True)

    gt, difficulty, images = load_wider_dev(args.data)
    paths = spread_subset(list(gt), args.limit)
    paths = [paths[i] for i in np.random.default_rng(args.seed).permutation(len(paths))]
    k, n = (int(x) for x in args.shard.split("/"))
    paths = paths[k::n]
    designs = GROUPS[args.group]
    passes = list(dict.fromkeys(p for ps in designs.values() for p in ps))
    t0 = time.perf_counter()

    def progress(k: int) -> None:
        if k % 10 == 0:
            print(f"[{k}/{len(paths)}] {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    raw = args.out / "raw.pkl"
    if args.from_raw:
        with open(raw, "rb") as fh:
            done, found, secs, sizes, *rest = pickle.load(fh)
        power = rest[0] if rest else 1.0  # runs before the calibration saved OpenCV's score
        for p in found:
            if PASSES[p][0] == "yunet" and power != SCORE_POWER:
                found[p] = {k: f.with_columns(scores=f.scores ** (SCORE_POWER / power)) for k, f in found[p].items()}
    else:
        done, found, secs, sizes = run(paths, images, passes, args.minutes, progress)
        with open(raw, "wb") as fh:  # detections of each pass, to re-score designs without re-running
            pickle.dump((done, found, secs, sizes, SCORE_POWER), fh)
    gt = {p: gt[p] for p in done}
    difficulty = {p: difficulty[p] for p in done}
    load = os.getloadavg()
    results = {"meta": {"group": args.group, "images": len(done), "of": len(paths), "faces_valid": int(sum(g.valid.sum() for g in gt.values())),
                        "faces": {s: int(sum(d[:, i].sum() for d in difficulty.values())) for i, s in enumerate(SETTINGS)},
                        "threads": 1, "cpu": f"{platform.machine()}, {os.cpu_count()} cores", "loadavg_at_end": load,
                        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "nms_iou": NMS_IOU, "min_score": MIN_SCORE},
               "passes": {p: {"ms_mean": 1000 * float(np.mean(secs[p]))} for p in passes}, "designs": {}}
    fp_budget = None
    for name, ps in designs.items():
        preds = {rel: faces_to_xywh(merged([found[p][rel] for p in ps], sizes[rel][1], sizes[rel][0])) for rel in done}
        ev = evaluate(gt, preds, difficulty)
        ms = 1000 * float(np.sum([np.mean(secs[p]) for p in ps]))
        ops = {}
        for thr in THRESHOLDS:
            valid = operating_point(gt, preds, thr)
            ops[str(thr)] = {"recall_valid": valid["recall"], "precision": valid["precision"], "fp_per_image": valid["fp"] / len(done),
                             **{f"recall_{s}": operating_point(gt, preds, thr, difficulty, s)["recall"] for s in SETTINGS}}
        if fp_budget is None:  # the first design's FP/image at 0.2 (today's threshold) is the budget for all
            fp_budget = ops["0.2"]["fp_per_image"]
        results["designs"][name] = {"passes": ps, "ap": ev["ap"], "ms": ms, "operating_points": ops,
                                    "at_equal_fp": at_fp(gt, preds, difficulty, fp_budget * len(done))}
    base = next(iter(results["designs"].values()))["ms"]
    m = results["meta"]
    lines = [f"WIDER FACE dev, {m['images']} images (seeded random order of a {m['of']}-image spread subset), "
             f"{m['faces_valid']} valid faces; onnxruntime CPU, 1 thread, load average at the end {load[0]:.1f} on {m['cpu']}.", "",
             "| design | AP easy | AP medium | AP hard | cost (ms/img, 1 thread) | cost vs first |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in results["designs"].items():
        lines.append(f"| {name} | {fmt(r['ap']['easy'])} | {fmt(r['ap']['medium'])} | {fmt(r['ap']['hard'])} | {r['ms']:.0f} | {r['ms'] / base:.2f}x |")
    lines += ["", "| design | threshold | recall (valid) | recall easy / medium / hard | precision | FP / image |", "|---|---:|---:|---|---:|---:|"]
    for name, r in results["designs"].items():
        for thr, op in r["operating_points"].items():
            lines.append(f"| {name} | {thr} | {fmt(op['recall_valid'])} | {fmt(op['recall_easy'])} / {fmt(op['recall_medium'])} / "
                         f"{fmt(op['recall_hard'])} | {fmt(op['precision'])} | {op['fp_per_image']:.2f} |")
    first = next(iter(results["designs"]))
    lines += ["", f"At the same false alarms as {first} at threshold 0.2 ({fp_budget:.2f} FP / image), each design at its own threshold:", "",
              "| design | threshold | recall (valid) | recall easy / medium / hard |", "|---|---:|---:|---|"]
    for name, r in results["designs"].items():
        e = r["at_equal_fp"]
        if e["threshold"] is None:
            lines.append(f"| {name} | – | – | – |")
        else:
            lines.append(f"| {name} | {e['threshold']:.3f} | {fmt(e['recall_valid'])} | {fmt(e['recall_easy'])} / "
                         f"{fmt(e['recall_medium'])} / {fmt(e['recall_hard'])} |")
    md = "\n".join(lines) + "\n"
    (args.out / "cascade.json").write_text(json.dumps(results, indent=1))
    (args.out / "cascade.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
