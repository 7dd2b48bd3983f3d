"""Recall by slice (size, blur, light, occlusion, pose, skin tone, gender, age), with
bootstrap confidence intervals and disparity measures.

Why a *cluster* bootstrap: faces in one photo share its light, blur and camera, so they do not
fail independently. Resampling faces would give intervals that are too narrow; we resample
whole images (with replacement) and recompute every slice's recall from the same resamples,
so the spread between groups gets an interval too.

Slices come from the WIDER attributes (see :data:`veil.io.wider_format.ATTRIBUTES`), the
box size, and optional per-face labels (``image,face_index,<column>...``, e.g. the
perceived skin tone / gender / age of ``wider_dev_demographics.csv``). Only valid faces
count; a label of ``Not Sure`` (or empty) leaves the face out of that slice.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import CorruptMediaError, InputError, MediaNotFoundError
from ..io.wider_format import GtImage

__all__ = [
    "SIZE_BINS",
    "ATTRIBUTE_SLICES",
    "FaceLabels",
    "read_face_labels",
    "slice_labels",
    "SliceRecall",
    "Disparity",
    "bootstrap_recall",
    "disparity",
    "bootstrap_ap",
    "chance_spread",
    "check_images",
]

#: face height bins in pixels (WIDER's hard set is mostly the first two)
SIZE_BINS = (("<16 px", 0, 16), ("16-32 px", 16, 32), ("32-64 px", 32, 64), ("64-128 px", 64, 128), (">=128 px", 128, 1e9))

#: attribute -> names of its values, in the gt file's coding
ATTRIBUTE_SLICES: dict[str, dict[int, str]] = {
    "blur": {0: "clear", 1: "normal blur", 2: "heavy blur"},
    "illumination": {0: "normal light", 1: "extreme light"},
    "occlusion": {0: "no occlusion", 1: "partial occlusion", 2: "heavy occlusion"},
    "pose": {0: "typical pose", 1: "atypical pose"},
    "expression": {0: "typical expression", 1: "exaggerated expression"},
}

#: labels that mean "not labelled"
UNLABELLED = {"", "not sure", "unknown", "na", "n/a", "none"}

#: image path -> column -> per-face label (None = unlabelled), in gt face order
FaceLabels = Mapping[str, Mapping[str, list[str | None]]]


def read_face_labels(path: str | Path, gt: Mapping[str, GtImage], columns: Sequence[str] | None = None) -> dict[str, dict[str, list[str | None]]]:
    """Read per-face labels: ``image,face_index,<label columns>`` rows.

    Columns other than ``image``, ``face_index``, the box and the WIDER attributes are label
    columns (or only ``columns``). When the file repeats ``x,y,w,h`` they must equal the gt
    box: a mismatch means the labels belong to another version of the annotations.

    Raises:
        MediaNotFoundError, CorruptMediaError: naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"labels file not found: {path}")
    skip = {"image", "face_index", "x", "y", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose"}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for need in ("image", "face_index"):
            if need not in fields:
                raise CorruptMediaError(f"{path}:1: missing column {need!r} (have {', '.join(fields)})")
        cols = list(columns) if columns else [c for c in fields if c not in skip]
        missing = [c for c in cols if c not in fields]
        if missing:
            raise CorruptMediaError(f"{path}:1: missing label column(s) {', '.join(missing)}")
        has_box = all(c in fields for c in ("x", "y", "w", "h"))
        out: dict[str, dict[str, list[str | None]]] = {}
        for lineno, row in enumerate(reader, start=2):
            image = row["image"]
            g = gt.get(image)
            if g is None:
                raise CorruptMediaError(f"{path}:{lineno}: image {image!r} is not in the ground truth")
            try:
                idx = int(row["face_index"])
            except (TypeError, ValueError):
                raise CorruptMediaError(f"{path}:{lineno}: bad face_index {row['face_index']!r}") from None
            if not 0 <= idx < len(g):
                raise CorruptMediaError(f"{path}:{lineno}: face_index {idx} but {image} has {len(g)} gt faces")
            if has_box:
                try:
                    box = np.array([float(row[c]) for c in ("x", "y", "w", "h")])
                except (TypeError, ValueError):
                    raise CorruptMediaError(f"{path}:{lineno}: bad box {[row[c] for c in 'xywh']}") from None
                if not np.allclose(box, g.boxes[idx], atol=1.0):
                    raise CorruptMediaError(f"{path}:{lineno}: box {box.tolist()} of {image} face {idx} does not match "
                                            f"the gt box {g.boxes[idx].tolist()}: labels from another annotation version?")
            per = out.setdefault(image, {c: [None] * len(g) for c in cols})
            for c in cols:
                v = (row.get(c) or "").strip()
                per[c][idx] = None if v.lower() in UNLABELLED else v
    return out


def slice_labels(gt: Mapping[str, GtImage], labels: FaceLabels | None = None) -> dict[str, list[np.ndarray]]:
    """Per slice family, per image, the label of each face (``None`` = not in this family).

    Families: ``size``, the WIDER attributes of :data:`ATTRIBUTE_SLICES`, and each label column.
    """
    fams: dict[str, list[np.ndarray]] = {"size": []}
    fams.update({a: [] for a in ATTRIBUTE_SLICES})
    label_cols: list[str] = sorted({c for per in (labels or {}).values() for c in per})
    fams.update({c: [] for c in label_cols})
    for path, g in gt.items():
        h = g.boxes[:, 3]
        size = np.full(len(g), None, object)
        for name, lo, hi in SIZE_BINS:
            size[(h >= lo) & (h < hi)] = name
        fams["size"].append(size)
        for attr, names in ATTRIBUTE_SLICES.items():
            vals = g.attribute(attr)
            fams[attr].append(np.array([names.get(int(v)) for v in vals], object))
        per = (labels or {}).get(path, {})
        for c in label_cols:
            fams[c].append(np.array(per.get(c, [None] * len(g)), object))
    return fams


@dataclass
class SliceRecall:
    group: str
    faces: int
    found: int
    recall: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Disparity:
    """Spread (max - min recall, in points) and min/max ratio over the groups of a family."""

    spread: float
    spread_ci: tuple[float, float]
    ratio: float
    ratio_ci: tuple[float, float]
    worst: str
    best: str

    def as_dict(self) -> dict:
        return {"spread_points": self.spread, "spread_ci": list(self.spread_ci), "min_max_ratio": self.ratio,
                "ratio_ci": list(self.ratio_ci), "worst": self.worst, "best": self.best}


def _resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` counts: how often each image appears in each resample."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    w = np.zeros((n_boot, n), np.float64)
    np.add.at(w, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    return w


def bootstrap_recall(
    hits: Mapping[str, np.ndarray],
    groups: list[np.ndarray],
    counts: list[np.ndarray] | None = None,
    order: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[list[SliceRecall], np.ndarray]:
    """Recall per group with a percentile 95 % interval from an image-level bootstrap.

    Args:
        hits: per image (in ``groups`` order) which faces were found.
        groups: per image, each face's group label (``None`` = not in any group).
        counts: per image, which faces count at all (e.g. valid faces); default all.
        order: groups to report, in this order (default: sorted labels present).

    Returns:
        (one :class:`SliceRecall` per group, ``(n_boot, n_groups)`` bootstrap recalls) —
        the latter so that a disparity over the same resamples can be computed.
    """
    hit_list = list(hits.values())
    # groups of counted faces only: a group seen only on uncounted faces would report 0 faces
    # and a NaN recall, which makes the disparity NaN and names it worst and best
    present = sorted({g for i, arr in enumerate(groups) for k, g in enumerate(arr)
                      if g is not None and (counts is None or bool(counts[i][k]))})
    names = [g for g in (order or present) if g in present]
    n_img, n_grp = len(groups), len(names)
    faces = np.zeros((n_img, n_grp))
    found = np.zeros((n_img, n_grp))
    col = {g: j for j, g in enumerate(names)}
    for i, (lab, h) in enumerate(zip(groups, hit_list)):
        use = np.ones(len(lab), bool) if counts is None else np.asarray(counts[i], bool)
        for k, g in enumerate(lab):
            if g is None or not use[k] or g not in col:
                continue
            faces[i, col[g]] += 1
            found[i, col[g]] += bool(h[k])
    w = _resample_weights(n_img, n_boot, seed) if n_boot else np.zeros((0, n_img))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = (w @ found) / (w @ faces)
    out = []
    for j, g in enumerate(names):
        f, n = found[:, j].sum(), faces[:, j].sum()
        lo, hi = (np.nanpercentile(boot[:, j], [2.5, 97.5]) if n_boot else (np.nan, np.nan))
        out.append(SliceRecall(g, int(n), int(f), float(f / n) if n else float("nan"), float(lo), float(hi)))
    return out, boot


def disparity(rows: Sequence[SliceRecall], boot: np.ndarray) -> Disparity:
    """Spread (points) and min/max ratio, with intervals from the same bootstrap resamples."""
    rec = np.array([r.recall for r in rows])
    spread = 100 * float(rec.max() - rec.min())
    ratio = float(rec.min() / rec.max()) if rec.max() > 0 else float("nan")
    if len(boot):
        b_spread = 100 * (np.nanmax(boot, axis=1) - np.nanmin(boot, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            b_ratio = np.nanmin(boot, axis=1) / np.nanmax(boot, axis=1)
        s_ci = tuple(float(x) for x in np.nanpercentile(b_spread, [2.5, 97.5]))
        r_ci = tuple(float(x) for x in np.nanpercentile(b_ratio, [2.5, 97.5]))
    else:
        s_ci = r_ci = (float("nan"), float("nan"))
    return Disparity(spread, s_ci, ratio, r_ci, rows[int(rec.argmin())].group, rows[int(rec.argmax())].group)  # type: ignore[arg-type]


def chance_spread(hits: Mapping[str, np.ndarray], groups: list[np.ndarray], counts: list[np.ndarray] | None,
                  order: Sequence[str], observed: float, n_perm: int = 1000, seed: int = 0) -> dict:
    """How large a spread chance alone produces with these group sizes (permutation test).

    The group labels are shuffled among the labelled, counted faces, so every group keeps its
    size but has, by construction, the same expected recall. With groups of a few hundred faces
    the spread of recall between six groups is several points *by chance*; a target of
    "spread <= x" is only meaningful against this null.

    Returns ``{"median", "p95", "p_value"}``: the null spread's median and 95th percentile (points) and
    the share of shuffles with a spread at least as large as ``observed``.
    """
    hit_list = list(hits.values())
    labs, found = [], []
    for i, (lab, h) in enumerate(zip(groups, hit_list)):
        use = np.ones(len(lab), bool) if counts is None else np.asarray(counts[i], bool)
        for k, g in enumerate(lab):
            if g is not None and use[k] and g in order:
                labs.append(order.index(g))
                found.append(bool(h[k]))
    labs_a, found_a = np.asarray(labs), np.asarray(found, np.float64)
    if len(labs_a) == 0 or n_perm <= 0:
        return {"median": float("nan"), "p95": float("nan"), "p_value": float("nan"), "shuffles": 0}
    rng = np.random.default_rng(seed)
    n_groups = len(order)
    sizes = np.bincount(labs_a, minlength=n_groups).astype(np.float64)
    present = sizes > 0
    spreads = np.empty(n_perm)
    for b in range(n_perm):
        perm = rng.permutation(labs_a)
        rec = np.bincount(perm, weights=found_a, minlength=n_groups)[present] / sizes[present]
        spreads[b] = 100 * (rec.max() - rec.min())
    return {"median": float(np.median(spreads)), "p95": float(np.percentile(spreads, 95)),
            "p_value": float((spreads >= observed - 1e-9).mean()), "shuffles": n_perm}


def bootstrap_ap(parts, setting: str, thresholds: np.ndarray, n_boot: int = 200, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of a setting's AP over image resamples.

    ``parts`` is a :class:`veil.eval.widerface.ProtocolParts`; matching is done once and the
    resamples only re-weight images (an image drawn twice counts twice).
    """
    if n_boot <= 0:
        return float("nan"), float("nan")
    w = _resample_weights(len(parts.images), n_boot, seed)
    aps = np.array([parts.ap(setting, thresholds, wi) for wi in w])
    lo, hi = np.percentile(aps, [2.5, 97.5])
    return float(lo), float(hi)


def check_images(gt: Mapping[str, GtImage], images: Path, allow_partial: bool,
                 exists: Callable[[Path], bool] = Path.is_file) -> tuple[dict[str, GtImage], list[str]]:
    """Split the gt into images present on disk and missing ones.

    Refuses (InputError naming the first missing files) unless ``allow_partial``.
    """
    missing = [p for p in gt if not exists(images / p)]
    if missing and not allow_partial:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise InputError(f"{len(missing)} of {len(gt)} images listed in the ground truth are missing under {images}: "
                         f"{shown} (--allow-partial evaluates the rest and marks the report as partial)")
    gone = set(missing)
    return {p: g for p, g in gt.items() if p not in gone}, missing
