"""WIDER FACE dev-split benchmark of the detection mitigations: extra test-time passes
(flip, rescaling, low-light and contrast enhancement) vs AP, recall, false positives,
recall by perceived skin tone, and detection time.

What it measures. Every image is decoded once and run through each *pass* in turn, one
image per call, so that all passes see the same machine load; each pass is CenterFace at
native resolution (``DetectConfig(max_side=0, low_light=False)``) through
:meth:`veil.detect.base.GridDetector.detect_at`, raw detections (score >= 0.02, before NMS):

=========  ==================================================================================
pass       stands for
=========  ==================================================================================
native     the plain pass (the baseline every combination contains)
flip       ``DetectConfig.flip``: the mirrored frame, boxes mapped back with
           :func:`veil.detect.augment.mirror` (the network is not exactly symmetric)
s0.5       ``DetectConfig.scales`` 0.5: half size, for faces too large for the receptive field
s1.5, s2   ``DetectConfig.scales`` 1.5 / 2.0: upscaled, for faces too small for the network's
           stride (WIDER hard is mostly faces under 32 px)
lowlight   ``DetectConfig.low_light``: dark images only (:meth:`veil.detect.lowlight.LowLight.is_dark`),
           brightened and denoised (``LowLight.enhance``); no detections on normal images
clahe      a candidate contrast fix, not in veil: CLAHE (clip 2, 8x8 tiles) on the L channel of Lab
gamma      a candidate brightening, not in veil: gamma 0.6 on every image
=========  ==================================================================================

Each *combination* merges its passes' detections with :func:`veil.detect.nms.nms` at IoU 0.3
(veil's ``nms_iou``) -- e.g. ``s0.5+native+s1.5`` is the ``thorough`` candidate -- and is
scored with the official WIDER protocol (:func:`veil.eval.widerface.evaluate`, AP easy /
medium / hard) and at raw score thresholds (default 0.2 = veil's operating threshold, and 0.3):
recall of the valid faces, false positives per image, recall per perceived skin tone I..VI
(``wider_dev_demographics.csv``; valid, labelled faces) with image-level bootstrap 95 %
intervals (:func:`veil.eval.slices.bootstrap_recall`), the spread between tones (max - min,
points) with its interval (:func:`veil.eval.slices.disparity`), and the spread chance alone
gives with these group sizes (:func:`veil.eval.slices.chance_spread`: median, 95th percentile,
p-value of the observed spread). Why: a mitigation is worth its cost only if it raises recall
(AP hard, recall at 0.2) or narrows the skin-tone spread beyond what chance explains, without
many more false positives.

Time per combination = the sum of its passes' mean ms / image: detection only (resize,
enhancement, flip, network, decoding), image decode and the NMS merge excluded. Passes are
not capped at ``veil.detect.augment.MAX_PASS_SIDE`` and merged boxes are not clipped to
the frame (as in the experiments this script replaces, whose detections it reproduces exactly);
``AugmentedDetector`` does both. The cap matters for s2 only: it takes the 203 portrait images
of the split (long side > 1,280 px) past 2,560 px, where veil would run them at a lower scale.

    python bench/mitigations.py --out /tmp/mitigations              # full dev split: ~25-30 min on 2 cores
    python bench/mitigations.py --limit 100 --out /tmp/mitig_quick  # quick subset: ~3-4 min
    python bench/mitigations.py --out /tmp/mitigations --reuse --combos native native+s1.5
                                                                    # new combinations, no re-detection

Writes ``<out>/mitigations.json`` (everything) and ``<out>/mitigations.md`` (the tables for
docs/benchmarks.md) and prints the Markdown. Each pass's raw detections and per-image times
are cached in ``<out>/passes/<pass>.npz``; ``--reuse`` loads a cached pass instead of running
it again when it covers the selected images with the same model and score floor (a full-split
cache also serves ``--limit`` runs). Nothing is written inside the repository.

Most of the time is detection: about 1.5 s per image for all eight passes on 2 idle cores
(s2 alone ~0.6 s, s1.5 ~0.3 s, native / flip / clahe / gamma ~0.14 s each, low light only
on dark images); scoring the combinations costs little next to it (5 s for the ten default
combinations on 40 images).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.config import DetectConfig  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.detect.augment import mirror  # noqa: E402
from veil.detect.lowlight import LowLight  # noqa: E402
from veil.detect.nms import nms  # noqa: E402
from veil.eval.slices import bootstrap_recall, chance_spread, disparity, read_face_labels, slice_labels  # noqa: E402
from veil.eval.data import default_data  # noqa: E402
from veil.eval.wider_run import spread_subset  # noqa: E402
from veil.eval.widerface import SETTINGS, evaluate, face_hits, load_wider_dev, operating_point  # noqa: E402

#: score floor of every pass (what the PR curve needs; thresholds are applied after merging)
CURVE_MIN_SCORE = 0.02
THRESHOLDS = (0.2, 0.3)
#: IoU of the merge (veil's DetectConfig.nms_iou)
MERGE_IOU = DetectConfig().nms_iou
SKIN_COLUMN = "perceived_skin"
SKIN_TONES = ("I", "II", "III", "IV", "V", "VI")
CACHE_VERSION = 1

_CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
_GAMMA_LUT = np.clip(((np.arange(256) / 255.0) ** 0.6) * 255 + 0.5, 0, 255).astype(np.uint8)


def clahe(rgb: np.ndarray) -> np.ndarray:
    """CLAHE (clip 2.0, 8x8 tiles) on the lightness of Lab; colours unchanged."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = _CLAHE.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def gamma(rgb: np.ndarray) -> np.ndarray:
    """Gamma 0.6 (brightens the shadows) on every image."""
    return _GAMMA_LUT[rgb]


@dataclass(frozen=True)
class Pass:
    name: str
    what: str
    scale: float = 1.0
    flip: bool = False
    transform: str | None = None  # "clahe" | "gamma" | "lowlight"


ALL_PASSES = {
    p.name: p
    for p in (
        Pass("native", "plain pass at native resolution"),
        Pass("flip", "mirrored image (DetectConfig.flip)", flip=True),
        Pass("s0.5", "downscaled 0.5x (DetectConfig.scales)", scale=0.5),
        Pass("s1.5", "upscaled 1.5x (DetectConfig.scales)", scale=1.5),
        Pass("s2", "upscaled 2x (DetectConfig.scales)", scale=2.0),
        Pass("lowlight", "dark images only, brightened + denoised (DetectConfig.low_light)", transform="lowlight"),
        Pass("clahe", "CLAHE on L of Lab, every image (not in veil)", transform="clahe"),
        Pass("gamma", "gamma 0.6, every image (not in veil)", transform="gamma"),
    )
}

DEFAULT_COMBOS = (
    "native",
    "native+flip",
    "native+lowlight",
    "native+clahe",
    "native+gamma",
    "native+s1.5",
    "native+s2",
    "s0.5+native+s1.5",
    "s0.5+native+s1.5+s2",
    "s0.5+native+flip+s1.5+s2",
)
COMBO_NOTES = {"s0.5+native+s1.5": "thorough candidate"}

#: per pass: image -> (xyxy float32 (n, 4), scores float32 (n,)); and image -> seconds
Dets = dict[str, tuple[np.ndarray, np.ndarray]]


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def fmt(x: float | None, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def pct(x: float | None, nd: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{nd}f}"


def clean(o):
    """JSON-safe: NaN -> null, numpy scalars -> Python."""
    if isinstance(o, dict):
        return {str(k): clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if math.isnan(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


# -- passes ------------------------------------------------------------------------------
class PassRunner:
    """Runs one pass on one image through the package's detector; returns raw faces."""

    def __init__(self, det, min_score: float):
        self.det = det
        self.min_score = min_score
        self.low_light = LowLight(DetectConfig().low_light_level)
        self.transforms: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "clahe": clahe, "gamma": gamma, "lowlight": self.low_light.enhance}

    def __call__(self, p: Pass, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """(xyxy, scores, ran): ``ran`` is False for the low-light pass on a normal image."""
        if p.transform == "lowlight" and not self.low_light.is_dark(img):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), False
        fn = self.transforms[p.transform] if p.transform else None
        if p.flip:
            h, w = img.shape[:2]
            faces = mirror(self.det.detect_at(np.ascontiguousarray(img[:, ::-1]), p.scale, self.min_score, fn), w)
        else:
            faces = self.det.detect_at(img, p.scale, self.min_score, fn)
        return faces.xyxy.astype(np.float32), faces.scores.astype(np.float32), True


def cache_path(out: Path, name: str) -> Path:
    return out / "passes" / f"{name}.npz"


def save_pass(path: Path, name: str, dets: Dets, secs: dict[str, float], ran: dict[str, bool], meta: dict) -> None:
    images = list(dets)
    counts = np.array([len(dets[i][1]) for i in images], np.int64)
    xyxy = np.concatenate([dets[i][0] for i in images]).reshape(-1, 4) if images else np.zeros((0, 4), np.float32)
    scores = np.concatenate([dets[i][1] for i in images]) if images else np.zeros(0, np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp, images=np.array(images, dtype=str), counts=counts, xyxy=xyxy.astype(np.float32),
        scores=scores.astype(np.float32), seconds=np.array([secs[i] for i in images], np.float64),
        ran=np.array([ran[i] for i in images], bool),
        meta=np.array(json.dumps({**meta, "pass": name, "version": CACHE_VERSION})))
    tmp.replace(path)


def load_pass(path: Path) -> tuple[Dets, dict[str, float], dict[str, bool], dict]:
    with np.load(path, allow_pickle=False) as z:
        images = z["images"].tolist()
        ends = np.cumsum(z["counts"])
        starts = ends - z["counts"]
        xyxy, scores = z["xyxy"], z["scores"]
        dets = {im: (xyxy[a:b], scores[a:b]) for im, a, b in zip(images, starts, ends)}
        secs = dict(zip(images, z["seconds"].tolist()))
        ran = dict(zip(images, z["ran"].tolist()))
        meta = json.loads(str(z["meta"]))
    return dets, secs, ran, meta


def usable_cache(path: Path, paths: list[str], want: dict) -> tuple[Dets, dict[str, float], dict[str, bool], dict] | None:
    if not path.is_file():
        return None
    try:
        dets, secs, ran, meta = load_pass(path)
    except Exception as e:  # noqa: BLE001 - a broken cache is simply re-made
        print(f"ignoring unreadable cache {path}: {e}", file=sys.stderr)
        return None
    for k, v in want.items():
        if meta.get(k) != v:
            print(f"ignoring cache {path}: {k} = {meta.get(k)!r}, need {v!r}", file=sys.stderr)
            return None
    missing = [p for p in paths if p not in dets]
    if missing:
        print(f"ignoring cache {path}: lacks {len(missing)} of the {len(paths)} selected images", file=sys.stderr)
        return None
    return ({p: dets[p] for p in paths}, {p: secs[p] for p in paths}, {p: ran[p] for p in paths}, meta)


# -- combinations ----------------------------------------------------------------------
def merge(combo: list[str], dets: dict[str, Dets], paths: list[str], iou: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per image, the combination's passes merged by NMS, as (xywh, scores) for the evaluation."""
    out = {}
    for p in paths:
        xy = np.concatenate([dets[k][p][0] for k in combo]).reshape(-1, 4)
        sc = np.concatenate([dets[k][p][1] for k in combo])
        keep = nms(xy, sc, iou)
        xy, sc = xy[keep].astype(np.float64), sc[keep].astype(np.float64)
        out[p] = (np.concatenate([xy[:, :2], xy[:, 2:] - xy[:, :2]], 1), sc)
    return out


def score_combo(combo, dets, gt, difficulty, skin, valid, pass_ms, args) -> dict:
    preds = merge(combo, dets, list(gt), args.merge_iou)
    ev = evaluate(gt, preds, difficulty)
    n = len(gt)
    ops = {}
    for thr in args.thresholds:
        op = operating_point(gt, preds, thr)
        by = {st: operating_point(gt, preds, thr, difficulty, st)["recall"] for st in SETTINGS}
        hits = face_hits(gt, preds, thr)
        rows, boot = bootstrap_recall(hits, skin, valid, SKIN_TONES, args.n_boot)
        if rows:
            d = disparity(rows, boot)
            chance = chance_spread(hits, skin, valid, [r.group for r in rows], d.spread, args.n_perm)
            disp = d.as_dict()
        else:
            disp, chance = {}, {}
        ops[str(thr)] = {
            "recall_valid": op["recall"],
            **{f"recall_{st}": by[st] for st in SETTINGS},
            "precision": op["precision"],
            "tp": op["tp"],
            "fp": op["fp"],
            "fp_per_image": op["fp"] / n,
            "skin": {r.group: r.as_dict() for r in rows},
            "skin_disparity": disp,
            "skin_chance_spread": chance,
        }
    return {
        "passes": combo,
        "note": COMBO_NOTES.get("+".join(combo), ""),
        "ms_detect_sum": float(sum(pass_ms[k] for k in combo)),
        "ap": ev["ap"],
        "score_range": ev["score_range"],
        "operating_points": ops,
    }


# -- report ----------------------------------------------------------------------------
def markdown(results: dict) -> str:
    meta = results["meta"]
    thrs = meta["thresholds"]
    lines = [
        f"WIDER FACE dev split, {meta['images']} images ({meta['faces_valid']} valid faces; perceived skin tone "
        + ", ".join(f"{g} {n}" for g, n in meta["skin_faces"].items())
        + f"), detector {meta['detector']} on {meta['provider']} at native resolution, passes merged by NMS "
        f"IoU {meta['merge_iou']}, PR curve from score >= {meta['curve_min_score']}, {meta['cpu']}.",
        "",
        "Passes (ms / image = detection only: resize, enhancement, network, decoding; image decode excluded):",
        "",
        "| pass | what | ms / image (mean) | ms / image (median) | images run |",
        "|---|---|---:|---:|---:|",
    ]
    for name, p in results["passes"].items():
        lines.append(f"| {name} | {p['what']} | {p['ms_mean']:.1f} | {p['ms_median']:.1f} | "
                     f"{p['images_run']}{' (cached)' if p['cached'] else ''} |")
    head = " | ".join(f"recall @{t} | FP / image @{t}" for t in thrs)
    lines += [
        "",
        "Combinations (ms / image = sum of the passes' mean detection time; NMS merge and decode excluded):",
        "",
        f"| combination | ms / image | AP easy | AP medium | AP hard | {head} |",
        "|---|---:|---:|---:|---:|" + "---:|---:|" * len(thrs),
    ]
    for name, c in results["combos"].items():
        cells = " | ".join(f"{pct(c['operating_points'][t]['recall_valid'])} % | {c['operating_points'][t]['fp_per_image']:.2f}"
                           for t in thrs)
        label = f"{name} ({c['note']})" if c["note"] else name
        ap = c["ap"]
        lines.append(f"| {label} | {c['ms_detect_sum']:.0f} | {fmt(ap['easy'])} | {fmt(ap['medium'])} | {fmt(ap['hard'])} | {cells} |")
    for t in thrs:
        lines += [
            "",
            f"Recall (%) of valid faces by perceived skin tone at threshold {t}; spread = max - min (points) with "
            "its image-bootstrap 95 % interval; chance = the spread of randomly relabelled faces with the same group "
            "sizes (median / 95th percentile) and the share of relabellings with a spread at least as large (p):",
            "",
            "| combination | " + " | ".join(SKIN_TONES) + " | spread (95 % CI) | chance median / p95 | p |",
            "|---|" + "---:|" * len(SKIN_TONES) + "---:|---:|---:|",
        ]
        for name, c in results["combos"].items():
            op = c["operating_points"][t]
            skin = op["skin"]
            d, ch = op["skin_disparity"], op["skin_chance_spread"]
            tones = " | ".join(pct(skin[g]["recall"]) if g in skin else "–" for g in SKIN_TONES)
            if d:
                spread = f"{fmt(d['spread_points'], 1)} ({fmt(d['spread_ci'][0], 1)}–{fmt(d['spread_ci'][1], 1)})"
                chance = f"{fmt(ch['median'], 1)} / {fmt(ch['p95'], 1)} | {fmt(ch['p_value'], 2)}"
            else:
                spread, chance = "–", "– | –"
            lines.append(f"| {name} | {tones} | {spread} | {chance} |")
    return "\n".join(lines) + "\n"


def parse_combo(text: str) -> list[str]:
    parts = [p for p in text.split("+") if p]
    bad = [p for p in parts if p not in ALL_PASSES]
    if not parts or bad or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(f"bad combination {text!r}: passes joined by '+', each once, from {', '.join(ALL_PASSES)}")
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data("widerface-dev"), help="widerface-dev folder (default: $VEIL_DATA/widerface-dev)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/mitigations"), help="output folder (outside the repo)")
    ap.add_argument("--limit", type=int, default=None, help="only N images, spread over the events (quick check)")
    ap.add_argument("--passes", nargs="+", default=None, choices=list(ALL_PASSES),
                    help="passes to run (default: those the combinations use); without --combos, only the default "
                    "combinations made of these passes are scored")
    ap.add_argument("--combos", nargs="+", type=parse_combo, default=None,
                    help="combinations to score, passes joined by '+' (e.g. native+s1.5); default: " + " ".join(DEFAULT_COMBOS))
    ap.add_argument("--reuse", action="store_true", help="load passes cached in <out>/passes/ instead of running them again")
    ap.add_argument("--thresholds", nargs="+", type=float, default=list(THRESHOLDS))
    ap.add_argument("--min-score", type=float, default=CURVE_MIN_SCORE, help="detector score floor of every pass")
    ap.add_argument("--merge-iou", type=float, default=MERGE_IOU, help="NMS IoU of the merge")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (skin-tone intervals)")
    ap.add_argument("--n-perm", type=int, default=1000, help="relabellings for the chance-level spread")
    ap.add_argument("--device", default="cpu", help="detector device (auto, cpu, cuda, ...)")
    args = ap.parse_args(argv)

    out: Path = args.out
    if out.resolve().is_relative_to(ROOT.resolve()):
        ap.error(f"--out must be outside the repository ({ROOT})")
    if args.combos is None:
        combos = [parse_combo(c) for c in DEFAULT_COMBOS]
        if args.passes:
            combos = [c for c in combos if set(c) <= set(args.passes)]
            if not combos:
                ap.error(f"no default combination is made of only {' '.join(args.passes)}; give --combos")
    else:
        combos = args.combos
    needed = list(dict.fromkeys([*(args.passes or []), *(p for c in combos for p in c)]))
    needed = [p for p in ALL_PASSES if p in needed]  # canonical order
    out.mkdir(parents=True, exist_ok=True)

    t_all = time.perf_counter()
    gt_all, difficulty, images = load_wider_dev(args.data)
    paths = spread_subset(list(gt_all), args.limit)
    gt = {p: gt_all[p] for p in paths}
    difficulty = {p: difficulty[p] for p in paths}
    labels = read_face_labels(args.data / "wider_dev_demographics.csv", gt_all, [SKIN_COLUMN])  # all of gt: the file covers every image
    skin = slice_labels(gt, labels)[SKIN_COLUMN]
    valid = [g.valid for g in gt.values()]

    det = build_detector(DetectConfig(max_side=0, device=args.device, low_light=False), batch=1)
    want = {"model_sha256": det.model_sha256, "min_score": args.min_score, "data": str(args.data.resolve())}

    dets: dict[str, Dets] = {}
    secs: dict[str, dict[str, float]] = {}
    ran: dict[str, dict[str, bool]] = {}
    cached: dict[str, bool] = {}
    cache_meta: dict[str, dict] = {}
    todo = []
    for name in needed:
        hit = usable_cache(cache_path(out, name), paths, want) if args.reuse else None
        if hit is not None:
            dets[name], secs[name], ran[name], cache_meta[name] = hit
            cached[name] = True
            print(f"pass {name}: loaded from {cache_path(out, name)} ({cache_meta[name].get('date', '?')})", file=sys.stderr)
        else:
            todo.append(ALL_PASSES[name])
            dets[name], secs[name], ran[name], cached[name] = {}, {}, {}, False

    if todo:
        run = PassRunner(det, args.min_score)
        print(f"detecting {', '.join(p.name for p in todo)} on {len(paths)} images", file=sys.stderr, flush=True)
        t_start = time.perf_counter()
        for k, rel in enumerate(paths, 1):
            img = read_rgb(images / rel)
            for p in todo:
                t0 = time.perf_counter()
                xy, sc, did = run(p, img)
                secs[p.name][rel] = time.perf_counter() - t0
                dets[p.name][rel] = (xy, sc)
                ran[p.name][rel] = did
            if k % 50 == 0 or k == len(paths):
                el = time.perf_counter() - t_start
                print(f"[{k}/{len(paths)}] {el:.0f} s elapsed, ~{el / k * (len(paths) - k):.0f} s left", file=sys.stderr, flush=True)
        date = time.strftime("%Y-%m-%d %H:%M:%S")
        for p in todo:
            cache_meta[p.name] = {**want, "date": date, "images": len(paths), "device": args.device, "provider": det.provider}
            save_pass(cache_path(out, p.name), p.name, dets[p.name], secs[p.name], ran[p.name], cache_meta[p.name])
    t_detect = time.perf_counter() - t_all

    pass_res = {}
    for name in needed:
        t = np.array([secs[name][p] for p in paths]) * 1000
        pass_res[name] = {
            "what": ALL_PASSES[name].what,
            "ms_mean": float(t.mean()),
            "ms_median": float(np.median(t)),
            "ms_p90": float(np.percentile(t, 90)),
            "images_run": int(sum(ran[name][p] for p in paths)),
            "detections": int(sum(len(dets[name][p][1]) for p in paths)),
            "cached": cached[name],
            "measured": cache_meta[name].get("date"),
            "provider": cache_meta[name].get("provider"),
        }
    pass_ms = {k: v["ms_mean"] for k, v in pass_res.items()}

    skin_faces = {g: int(sum(sum(1 for lab, v in zip(s, m) if lab == g and v) for s, m in zip(skin, valid))) for g in SKIN_TONES}
    results: dict = {
        "meta": {
            "data": str(args.data),
            "images": len(paths),
            "limit": args.limit,
            "faces_valid": int(sum(int(v.sum()) for v in valid)),
            "faces_per_setting": {s: int(sum(d[:, i].sum() for d in difficulty.values())) for i, s in enumerate(SETTINGS)},
            "skin_faces": skin_faces,
            "detector": det.name,
            "model_sha256": det.model_sha256,
            "provider": det.provider,
            "device": args.device,
            "curve_min_score": args.min_score,
            "merge_iou": args.merge_iou,
            "thresholds": [str(t) for t in args.thresholds],
            "n_boot": args.n_boot,
            "n_perm": args.n_perm,
            "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "timing": "per pass: wall time of the pass on one decoded image (resize, enhancement, flip, network, "
                      "decoding), mean over the images; per combination: sum of its passes' means (NMS merge and "
                      "image decode excluded)",
            "notes": "passes not capped at MAX_PASS_SIDE, merged boxes not clipped (unlike AugmentedDetector)",
        },
        "passes": pass_res,
        "combos": {},
    }
    for c in combos:
        name = "+".join(c)
        results["combos"][name] = score_combo(c, dets, gt, difficulty, skin, valid, pass_ms, args)
        print(f"scored {name}", file=sys.stderr, flush=True)
    results["meta"]["seconds_detect"] = round(t_detect, 1)
    results["meta"]["seconds_total"] = round(time.perf_counter() - t_all, 1)

    results = clean(results)
    (out / "mitigations.json").write_text(json.dumps(results, indent=1))
    md = markdown(results)
    (out / "mitigations.md").write_text(md)
    print(md)
    print(f"wrote {out / 'mitigations.json'} and {out / 'mitigations.md'} "
          f"({results['meta']['seconds_total']:.0f} s, detection {results['meta']['seconds_detect']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
