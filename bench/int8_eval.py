"""Int8 vs fp32 CenterFace on the WIDER FACE dev split: AP, recall and speed.

Every image is decoded once and given to each model at each detection resolution in turn,
one image per call, the order of the models alternating from image to image, so that fp32
and int8 see the same machine load. Scores with the official WIDER protocol
(:func:`veil.eval.widerface.evaluate`) and at the operating threshold.

    python bench/int8_eval.py --out /tmp/int8_eval                      # veil's int8 recipe
    python bench/int8_eval.py --limit 200 --model entropy=/tmp/e.onnx   # any int8 file(s) too
    python bench/int8_eval.py --quantize percentile=Percentile --limit 200

``--model NAME=PATH`` adds an already quantized ONNX file; ``--quantize NAME=METHOD``
quantizes with veil's calibration set and another calibration method (MinMax, Entropy,
Percentile) first. Without either, the int8 model is veil's own (``precision="int8"``,
from the cache; set ``VEIL_CACHE`` to keep it out of ``~/.cache/veil``). ``--no-fp32``
screens int8 files for accuracy only; ``--bootstrap N`` adds paired-bootstrap intervals
of the AP differences. Writes ``<out>/int8_eval.json`` and ``<out>/int8_eval.md``;
nothing is written inside the repository.

The numbers behind veil's int8 recipe (``veil.detect.quantize.MEASURED``) came from

    VEIL_CACHE=/tmp/veil-cache python bench/int8_eval.py --bootstrap 200 --out /tmp/int8_eval
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from wider_sweep import CURVE_MIN_SCORE, default_data, fmt, read_rgb, subset  # noqa: E402

from veil.config import DetectConfig  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.detect.centerface import CenterFace  # noqa: E402
from veil.detect.onnx_runtime import load_session  # noqa: E402
from veil.eval.widerface import SETTINGS, evaluate, load_wider_dev, operating_point  # noqa: E402
from veil.io.wider_format import faces_to_xywh  # noqa: E402
from veil.models import sha256_file  # noqa: E402


def load_file(path: Path, max_side: int) -> CenterFace:
    sess = load_session(path, "cpu", CenterFace.dynamic_inputs, CenterFace.dynamic_outputs)
    return CenterFace(sess, sha256_file(path), max_side=max_side, batch=1)


def bootstrap_deltas(gt, difficulty, preds, n: int, seed: int = 0) -> dict:
    """Paired bootstrap over images: 5th and 95th percentile of AP(model) - AP(fp32) per setting."""
    rng = np.random.default_rng(seed)
    paths = list(gt)
    deltas: dict = {}
    for _ in range(n):
        pick = [paths[i] for i in rng.integers(0, len(paths), len(paths))]
        g = {f"{j}/{p}": gt[p] for j, p in enumerate(pick)}
        d = {f"{j}/{p}": difficulty[p] for j, p in enumerate(pick)}
        aps = {}
        for key, pr in preds.items():
            aps[key] = evaluate(g, {f"{j}/{p}": pr[p] for j, p in enumerate(pick) if p in pr}, d)["ap"]
        for (v, side), ap_ in aps.items():
            if v != "fp32":
                for s in SETTINGS:
                    deltas.setdefault((v, side), {}).setdefault(s, []).append(ap_[s] - aps[("fp32", side)][s])
    return {k: {s: [float(np.percentile(x, 5)), float(np.percentile(x, 95))] for s, x in by.items()}
            for k, by in deltas.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--out", type=Path, default=Path("/tmp/int8_eval"))
    ap.add_argument("--limit", type=int, default=None, help="only N images, spread over the events")
    ap.add_argument("--sides", nargs="+", type=int, default=[1280, 640], help="max_side values")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="extra int8 ONNX file")
    ap.add_argument("--quantize", action="append", default=[], metavar="NAME=METHOD",
                    help="quantize with veil's calibration set and this calibration method")
    ap.add_argument("--no-veil-int8", action="store_true", help="leave out veil's precision='int8' model")
    ap.add_argument("--no-fp32", action="store_true", help="leave out fp32 (accuracy screening only)")
    ap.add_argument("--threshold", type=float, default=0.2)
    ap.add_argument("--min-score", type=float, default=CURVE_MIN_SCORE)
    ap.add_argument("--bootstrap", type=int, default=0, metavar="N",
                    help="N paired bootstrap resamples of the images: 90%% interval of AP(model) - AP(fp32)")
    args = ap.parse_args(argv)
    if args.out.resolve().is_relative_to(ROOT.resolve()):
        ap.error(f"--out must be outside the repository ({ROOT})")
    args.out.mkdir(parents=True, exist_ok=True)

    files: dict[str, Path] = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        files[name] = Path(path)
    if args.quantize:
        from veil.detect.quantize import Recipe, quantize_model
        from veil.models import resolve_model

        src, _ = resolve_model("centerface")
        for spec in args.quantize:
            name, _, method = spec.partition("=")
            dst = args.out / f"{name}.onnx"
            t0 = time.perf_counter()
            quantize_model(src, dst, CenterFace.dynamic_inputs, CenterFace.dynamic_outputs, Recipe(calibrate_method=method))
            print(f"quantized {name} ({method}) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            files[name] = dst

    # detectors[(variant, side)]
    detectors: dict[tuple[str, int], object] = {}
    for side in args.sides:
        if not args.no_fp32:
            detectors[("fp32", side)] = build_detector(DetectConfig(max_side=side, device="cpu"), batch=1)
        if not args.no_veil_int8:
            detectors[("int8", side)] = build_detector(DetectConfig(max_side=side, device="cpu", precision="int8"), batch=1)
        for name, path in files.items():
            detectors[(name, side)] = load_file(path, side)
    variants = list(dict.fromkeys(v for v, _ in detectors))

    gt, difficulty, images = load_wider_dev(args.data)
    paths = subset(list(gt), args.limit)
    gt = {p: gt[p] for p in paths}
    difficulty = {p: difficulty[p] for p in paths}
    preds = {k: {} for k in detectors}
    times = {k: [] for k in detectors}
    t_start = time.perf_counter()
    for i, rel in enumerate(paths, 1):
        img = read_rgb(images / rel)
        order = variants if i % 2 else variants[::-1]
        for side in args.sides:
            for v in order:
                det = detectors[(v, side)]
                t0 = time.perf_counter()
                faces = det.detect([img], args.min_score)[0]
                times[(v, side)].append(time.perf_counter() - t0)
                preds[(v, side)][rel] = faces_to_xywh(faces)
        if i % 50 == 0 or i == len(paths):
            el = time.perf_counter() - t_start
            print(f"[{i}/{len(paths)}] {el:.0f} s elapsed, ~{el / i * (len(paths) - i):.0f} s left", file=sys.stderr, flush=True)

    rows = []
    for (v, side), p in preds.items():
        ev = evaluate(gt, p, difficulty)
        op = operating_point(gt, p, args.threshold)
        by = {s: operating_point(gt, p, args.threshold, difficulty, s)["recall"] for s in SETTINGS}
        t = np.asarray(times[(v, side)]) * 1000
        det = detectors[(v, side)]
        rows.append({
            "model": v, "max_side": side, "ap": ev["ap"], "recall": op["recall"], "recall_by": by,
            "precision": op["precision"], "fp_per_image": op["fp"] / len(paths),
            "ms_mean": float(t.mean()), "ms_median": float(np.median(t)),
            "model_sha256": det.model_sha256,
            "source_model_sha256": getattr(det, "source_model_sha256", None),
        })
    if args.bootstrap and any(v == "fp32" for v, _ in preds):
        boot = bootstrap_deltas(gt, difficulty, preds, args.bootstrap)
        for r in rows:
            r["ap_delta_90"] = boot.get((r["model"], r["max_side"]))
    meta = {
        "images": len(paths), "data": str(args.data), "threshold": args.threshold,
        "curve_min_score": args.min_score, "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "timing": "wall time of det.detect([img], min_score), one image per call, models alternating",
    }
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        pass
    (args.out / "int8_eval.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        f"WIDER FACE dev split, {meta['images']} images, CPU ({meta['cpu']}), onnxruntime {meta.get('onnxruntime')}; "
        f"recall / precision at score >= {args.threshold}, PR curve from {args.min_score}.",
        "",
        "| model | max_side | AP easy | AP medium | AP hard | recall@thr | recall easy/med/hard | precision | ms/image mean | median |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (-r["max_side"], variants.index(r["model"]))):
        ap_ = r["ap"]
        lines.append(
            f"| {r['model']} | {r['max_side']} | {fmt(ap_['easy'], 4)} | {fmt(ap_['medium'], 4)} | {fmt(ap_['hard'], 4)} | "
            f"{fmt(r['recall'], 4)} | {' / '.join(fmt(r['recall_by'][s], 3) for s in SETTINGS)} | {fmt(r['precision'], 3)} | "
            f"{r['ms_mean']:.0f} | {r['ms_median']:.0f} |"
        )
    if any(r.get("ap_delta_90") for r in rows):
        lines += ["", f"AP(model) - AP(fp32), paired bootstrap over images ({args.bootstrap} resamples), 90 % interval:", "",
                  "| model | max_side | easy | medium | hard |", "|---|---:|---|---|---|"]
        for r in rows:
            if r.get("ap_delta_90"):
                lines.append(f"| {r['model']} | {r['max_side']} | " + " | ".join(
                    f"{r['ap_delta_90'][s][0]:+.4f} .. {r['ap_delta_90'][s][1]:+.4f}" for s in SETTINGS) + " |")
    md = "\n".join(lines) + "\n"
    (args.out / "int8_eval.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
