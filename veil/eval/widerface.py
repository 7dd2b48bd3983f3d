"""The WIDER FACE evaluation protocol (AP at IoU 0.5 on the easy / medium / hard settings).

A faithful, vectorised re-implementation of the official ``eval_tools`` (MATLAB) and of its
widely used Python port (``wider_face_evaluation``):

1. Scores are min-max normalised over all predictions for the images of the set.
2. Per image, predictions are taken best score first; each is assigned to the gt face it
   overlaps most (IoU with the ``+1`` pixel convention of the official code). If that IoU
   is >= 0.5 and the face is ignored (outside the setting, or ``invalid``), the prediction
   is neither a hit nor a false positive; if the face counts and was not found yet, it
   becomes found; anything else is a proposal that found nothing new.
3. At each of 1,000 thresholds ``1 - (t+1)/1000`` the proposals and found faces of every
   image are summed: precision = found / proposals, recall = found / faces in the setting.
   Images without gt faces or without predictions add faces but no proposals, as in the
   official code.
4. AP is the area under the precision envelope (VOC style).

The setting of each face (easy / medium / hard) comes from the official ``wider_*_val.mat``
lists; for the dev split they are in ``wider_dev_difficulty.csv`` (see :func:`read_difficulty`).

For operating points (one raw, unnormalised threshold, the way veil is actually run) use
:func:`operating_point` / :func:`recall_at`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from ..errors import CorruptMediaError, InputError, MediaNotFoundError
from ..faces import Faces
from ..io.wider_format import GtImage, faces_to_xywh, image_key, read_wider_gt

__all__ = [
    "SETTINGS",
    "Difficulty",
    "Predictions",
    "read_difficulty",
    "load_wider_dev",
    "box_iou_xywh",
    "voc_ap",
    "normalise_scores",
    "evaluate",
    "ProtocolParts",
    "thresholds_of",
    "operating_point",
    "recall_at",
    "face_hits",
    "read_difficulty_mat",
    "find_wider_set",
]

SETTINGS = ("easy", "medium", "hard")

#: image path -> ``(n_faces, 3)`` bool, columns easy, medium, hard (face order of the gt file).
Difficulty = Mapping[str, np.ndarray]
#: image path -> (``(n, 4)`` xywh boxes, ``(n,)`` scores), or a :class:`~veil.faces.Faces`.
Predictions = Mapping[str, Union[tuple[np.ndarray, np.ndarray], Faces]]


# -- inputs ---------------------------------------------------------------------------
def read_difficulty(path: str | Path, gt: Mapping[str, GtImage] | None = None) -> dict[str, np.ndarray]:
    """Read ``image,face_index,easy,medium,hard`` rows into ``{image: (n, 3) bool}``.

    With ``gt`` given, every gt image must be listed with exactly its faces.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"difficulty file not found: {path}")
    need = ("image", "face_index", *SETTINGS)
    rows: dict[str, dict[int, tuple[bool, bool, bool]]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise CorruptMediaError(f"{path}:1: missing column(s) {', '.join(missing)} (have {reader.fieldnames})")
        for lineno, row in enumerate(reader, start=2):
            try:
                idx = int(row["face_index"])
                flags = tuple(bool(int(row[s])) for s in SETTINGS)
            except (TypeError, ValueError):
                raise CorruptMediaError(f"{path}:{lineno}: bad row {row}") from None
            rows.setdefault(row["image"], {})[idx] = flags  # type: ignore[assignment]
    out: dict[str, np.ndarray] = {}
    for image, faces in rows.items():
        n = max(faces) + 1
        if sorted(faces) != list(range(n)):
            raise CorruptMediaError(f"{path}: face indices of {image} are not 0..{n - 1}")
        out[image] = np.array([faces[i] for i in range(n)], dtype=bool).reshape(n, 3)
    if gt is not None:
        for image, g in gt.items():
            got = len(out.get(image, ()))
            if got != len(g):
                raise InputError(f"{path}: {image} has {got} difficulty rows but {len(g)} gt faces")
    return out


def load_wider_dev(root: str | Path) -> tuple[dict[str, GtImage], dict[str, np.ndarray], Path]:
    """Load the dev split folder: (gt, difficulty, images folder)."""
    root = Path(root)
    gt = read_wider_gt(root / "wider_dev_bbx_gt.txt")
    difficulty = read_difficulty(root / "wider_dev_difficulty.csv", gt)
    return gt, difficulty, root / "images"


def _as_pred(value: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(value, Faces):
        return faces_to_xywh(value)
    boxes, scores = value
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    return boxes, scores


def _pred_lookup(preds: Predictions) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {image_key(k): _as_pred(v) for k, v in preds.items()}


# -- geometry and curves ---------------------------------------------------------------
def box_iou_xywh(a: np.ndarray, b: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of ``x, y, w, h`` boxes.

    ``plus_one`` uses the official code's inclusive-pixel convention (a box spans
    ``x .. x + w`` inclusive, so its width is ``w + 1``).
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    one = 1.0 if plus_one else 0.0
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1) + one
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1) + one
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2:3] + one) * (a[:, 3:4] + one)
    area_b = (b[:, 2] + one) * (b[:, 3] + one)
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (VOC 2010+ style), as the official code."""
    mrec = np.concatenate(([0.0], np.asarray(recall, np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.nan_to_num(np.asarray(precision, np.float64)), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def normalise_scores(preds: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Min and max score over all predictions (the official min-max normalisation range)."""
    allscores = [s for _, s in preds.values() if len(s)]
    if not allscores:
        return 0.0, 1.0
    cat = np.concatenate(allscores)
    return float(cat.min()), float(cat.max())


def _match(boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort predictions best first and give each its best-overlapping gt face.

    Returns (order, best gt index, best IoU), the last two in sorted order.
    """
    order = np.argsort(-scores, kind="stable")
    iou = box_iou_xywh(boxes[order], gt_boxes)
    best = iou.argmax(axis=1)
    return order, best, iou[np.arange(len(order)), best]


def _increments(best: np.ndarray, best_iou: np.ndarray, counts: np.ndarray, iou_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sorted prediction: (is a proposal, finds a new face) under the official rule."""
    hit = best_iou >= iou_thresh
    ignored_hit = hit & ~counts[best]
    proposal = ~ignored_hit
    new = np.zeros(len(best), bool)
    good = np.nonzero(hit & counts[best])[0]
    if len(good):
        _, first = np.unique(best[good], return_index=True)  # first (best-scored) hit per face
        new[good[first]] = True
    return proposal, new


# -- the protocol ----------------------------------------------------------------------
def _curve(sc: np.ndarray, prop: np.ndarray, new: np.ndarray, n_faces: float,
           thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each threshold from (weighted) per-prediction increments.

    Totals over all predictions with score >= thr; per image that is a prefix of the
    best-first list, exactly the official "last index above the threshold".
    """
    by = np.argsort(-sc, kind="stable")
    cum_prop = np.concatenate(([0.0], np.cumsum(prop[by], dtype=np.float64)))
    cum_new = np.concatenate(([0.0], np.cumsum(new[by], dtype=np.float64)))
    n_above = np.searchsorted(-sc[by], -thresholds, side="right")
    proposals, found = cum_prop[n_above], cum_new[n_above]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(proposals > 0, found / proposals, np.nan)
    recall = found / n_faces if n_faces else np.zeros_like(found)
    return precision, recall


class ProtocolParts:
    """The per-prediction increments of the official protocol, kept per image.

    :func:`evaluate` sums them over the images; :func:`veil.eval.slices.bootstrap_ap`
    re-weights the images (a bootstrap resample is a count per image) without re-matching.
    """

    def __init__(self, gt: Mapping[str, GtImage], preds: Predictions, difficulty: Difficulty,
                 iou_thresh: float = 0.5, settings: Sequence[str] = SETTINGS):
        lookup = _pred_lookup(preds)
        # like the official read_pred.m, only the predictions of the evaluated images count
        lo, hi = normalise_scores({k: v for k in map(image_key, gt) if (v := lookup.get(k)) is not None})
        self.score_range = [lo, hi]
        self.settings = tuple(settings)
        self.images = list(gt)
        cols = {s: SETTINGS.index(s) for s in settings}
        span = hi - lo
        #: per setting: faces per image (n_images,)
        self.faces = {s: np.zeros(len(gt), np.int64) for s in settings}
        parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {s: [] for s in settings}
        for i, (path, g) in enumerate(gt.items()):
            diff = np.asarray(difficulty.get(path, np.zeros((0, 3), bool)), bool).reshape(-1, 3)
            if len(diff) != len(g):
                raise InputError(f"{path}: {len(diff)} difficulty rows but {len(g)} gt faces")
            masks = {s: diff[:, c] & g.valid for s, c in cols.items()}
            for s in settings:
                self.faces[s][i] = int(masks[s].sum())
            boxes, scores = lookup.get(image_key(path), (np.zeros((0, 4)), np.zeros(0)))
            if len(g) == 0 or len(boxes) == 0:
                continue
            norm = (scores - lo) / span if span > 0 else np.ones_like(scores)
            order, best, best_iou = _match(boxes, norm, g.boxes)
            sorted_scores = norm[order]
            img = np.full(len(order), i, np.int64)
            for s in settings:
                proposal, new = _increments(best, best_iou, masks[s], iou_thresh)
                parts[s].append((sorted_scores, proposal, new, img))
        #: per setting: (scores, is proposal, finds a new face, image index), one row per prediction
        self.rows: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for s in settings:
            if parts[s]:
                self.rows[s] = tuple(np.concatenate([p[k] for p in parts[s]]) for k in range(4))  # type: ignore[assignment]
            else:
                self.rows[s] = (np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int64))

    def curve(self, setting: str, thresholds: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) per threshold; ``weights`` = how often each image counts."""
        sc, prop, new, img = self.rows[setting]
        w = np.ones(len(self.images)) if weights is None else np.asarray(weights, np.float64)
        return _curve(sc, prop * w[img], new * w[img], float(self.faces[setting] @ w), thresholds)

    def ap(self, setting: str, thresholds: np.ndarray, weights: np.ndarray | None = None) -> float:
        precision, recall = self.curve(setting, thresholds, weights)
        return voc_ap(recall, precision)


def thresholds_of(thresh_num: int = 1000) -> np.ndarray:
    """The official thresholds ``1 - (t+1)/N`` on normalised scores, highest first."""
    return 1.0 - np.arange(1, thresh_num + 1, dtype=np.float64) / thresh_num


def evaluate(
    gt: Mapping[str, GtImage],
    preds: Predictions,
    difficulty: Difficulty,
    iou_thresh: float = 0.5,
    thresh_num: int = 1000,
    settings: Sequence[str] = SETTINGS,
) -> dict[str, Any]:
    """Official WIDER FACE AP per setting.

    Args:
        gt: from :func:`~veil.io.wider_format.read_wider_gt`.
        preds: per image ``(boxes_xywh, scores)`` or a ``Faces``; keys with or without the
            ``.jpg`` extension. Images without an entry have no predictions.
        difficulty: from :func:`read_difficulty`.

    Returns:
        ``{"ap": {setting: float}, "pr": {setting: {"thresholds", "precision", "recall"}},
        "faces": {setting: int}, "score_range": [min, max], "images": int}``
        (curves as numpy arrays, highest threshold first).
    """
    parts = ProtocolParts(gt, preds, difficulty, iou_thresh, settings)
    thresholds = thresholds_of(thresh_num)
    ap: dict[str, float] = {}
    pr: dict[str, dict[str, np.ndarray]] = {}
    for s in settings:
        precision, recall = parts.curve(s, thresholds)
        ap[s] = voc_ap(recall, precision)
        pr[s] = {"thresholds": thresholds, "precision": precision, "recall": recall}
    faces = {s: int(parts.faces[s].sum()) for s in settings}
    return {"ap": ap, "pr": pr, "faces": faces, "score_range": parts.score_range, "images": len(gt)}


def operating_point(
    gt: Mapping[str, GtImage],
    preds: Predictions,
    threshold: float,
    difficulty: Difficulty | None = None,
    setting: str | None = None,
    iou_thresh: float = 0.5,
) -> dict[str, float]:
    """Recall and precision at one raw (unnormalised) score threshold.

    The faces that count are the valid faces (``setting=None``) or those of one setting;
    every other face is ignored (a prediction on it is neither a hit nor a false positive).
    Matching is the protocol's (best-overlapping face, IoU >= ``iou_thresh``, best score
    first). Unlike the AP protocol, predictions on images without any gt face count as
    false positives.

    Returns ``{"recall", "precision", "tp", "fp", "faces", "predictions"}``.
    """
    if setting is not None:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
        if difficulty is None:
            raise ValueError("a setting needs the difficulty table")
    lookup = _pred_lookup(preds)
    tp = fp = n_faces = n_preds = 0
    for path, g in gt.items():
        counts = g.valid
        if setting is not None:
            diff = np.asarray(difficulty.get(path, np.zeros((0, 3), bool)), bool).reshape(-1, 3)  # type: ignore[union-attr]
            if len(diff) != len(g):
                raise InputError(f"{path}: {len(diff)} difficulty rows but {len(g)} gt faces")
            counts = counts & diff[:, SETTINGS.index(setting)]
        n_faces += int(counts.sum())
        boxes, scores = lookup.get(image_key(path), (np.zeros((0, 4)), np.zeros(0)))
        keep = scores >= threshold
        boxes, scores = boxes[keep], scores[keep]
        if len(boxes) == 0:
            continue
        if len(g) == 0:
            fp += len(boxes)
            n_preds += len(boxes)
            continue
        _, best, best_iou = _match(boxes, scores, g.boxes)
        proposal, new = _increments(best, best_iou, counts, iou_thresh)
        tp += int(new.sum())
        fp += int(proposal.sum() - new.sum())
        n_preds += int(proposal.sum())
    return {
        "recall": tp / n_faces if n_faces else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "tp": tp,
        "fp": fp,
        "faces": n_faces,
        "predictions": n_preds,
    }


def recall_at(
    gt: Mapping[str, GtImage],
    preds: Predictions,
    threshold: float,
    difficulty: Difficulty | None = None,
    setting: str | None = None,
    iou_thresh: float = 0.5,
) -> float:
    """Share of the valid faces (or of one setting's faces) found at a raw score threshold."""
    return operating_point(gt, preds, threshold, difficulty, setting, iou_thresh)["recall"]


def face_hits(
    gt: Mapping[str, GtImage],
    preds: Predictions,
    threshold: float,
    iou_thresh: float = 0.5,
) -> dict[str, np.ndarray]:
    """Per image, which gt faces (in gt order) are found at a raw score threshold.

    A face is found when a prediction with ``score >= threshold`` overlaps it best among
    the image's faces, with IoU >= ``iou_thresh`` (the protocol's matching). Every face can
    be found here, invalid ones included; callers choose which faces count.
    """
    lookup = _pred_lookup(preds)
    out: dict[str, np.ndarray] = {}
    for path, g in gt.items():
        found = np.zeros(len(g), bool)
        boxes, scores = lookup.get(image_key(path), (np.zeros((0, 4)), np.zeros(0)))
        keep = scores >= threshold
        if len(g) and keep.any():
            _, best, best_iou = _match(boxes[keep], scores[keep], g.boxes)
            found[best[best_iou >= iou_thresh]] = True
        out[path] = found
    return out


def read_difficulty_mat(folder: str | Path, gt: Mapping[str, GtImage]) -> dict[str, np.ndarray]:
    """Read the official ``wider_{easy,medium,hard}_val.mat`` lists (``eval_tools/ground_truth``).

    Each file lists, per event and image, the 1-based indices of the faces that count in
    that setting. Needs scipy (installed with scikit-image).
    """
    folder = Path(folder)
    try:
        from scipy.io import loadmat
    except ImportError:
        raise InputError("reading the official .mat difficulty lists needs scipy: pip install scipy") from None
    by_key = {image_key(p): p for p in gt}
    out = {p: np.zeros((len(g), 3), bool) for p, g in gt.items()}
    for col, setting in enumerate(SETTINGS):
        path = folder / f"wider_{setting}_val.mat"
        if not path.is_file():
            raise MediaNotFoundError(f"difficulty list not found: {path}")
        try:
            mat = loadmat(str(path))
            events, files, lists = mat["event_list"], mat["file_list"], mat["gt_list"]
        except (KeyError, ValueError, OSError) as exc:
            raise CorruptMediaError(f"{path}: not an official WIDER difficulty list ({exc})") from None
        for e in range(len(events)):
            event = str(np.asarray(events[e][0]).ravel()[0])
            names, idxs = files[e][0], lists[e][0]
            for j in range(len(names)):
                name = str(np.asarray(names[j][0]).ravel()[0])
                path_img = by_key.get(f"{event}/{name}")
                if path_img is None:
                    continue  # an image not in this (sub)set
                ind = np.asarray(idxs[j][0], np.int64).ravel() - 1
                g = out[path_img]
                if len(ind) and (ind.min() < 0 or ind.max() >= len(g)):
                    raise CorruptMediaError(f"{path}: {event}/{name} lists face {ind.max() + 1} but the gt has {len(g)}")
                g[ind, col] = True
    return out


def find_wider_set(root: str | Path) -> dict[str, Path | None]:
    """Locate a WIDER-format set's files under ``root``.

    Understands our dev split (``*_bbx_gt.txt``, ``*_difficulty.csv``, ``*_demographics.csv``,
    ``images/``) and the official download (``wider_face_split/wider_face_val_bbx_gt.txt``,
    ``WIDER_val/images/``, ``eval_tools/ground_truth/*.mat``). Missing parts are ``None``.
    """
    root = Path(root)
    if not root.is_dir():
        raise MediaNotFoundError(f"WIDER folder not found: {root}")

    def first(patterns: Sequence[str]) -> Path | None:
        for pat in patterns:
            hits = sorted(root.glob(pat))
            if hits:
                return hits[0]
        return None

    gt_file = first(["*_val_bbx_gt.txt", "*_bbx_gt.txt", "wider_face_split/wider_face_val_bbx_gt.txt", "*/*_bbx_gt.txt"])
    images = first(["images", "WIDER_val/images", "*/images"])
    diff_csv = first(["*_difficulty.csv"])
    mat = first(["wider_hard_val.mat", "ground_truth/wider_hard_val.mat", "eval_tools/ground_truth/wider_hard_val.mat"])
    labels = first(["*_demographics.csv", "*_labels.csv"])
    return {"gt": gt_file, "images": images, "difficulty": diff_csv, "difficulty_mat": mat.parent if mat else None,
            "labels": labels}
