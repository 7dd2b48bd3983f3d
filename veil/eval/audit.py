"""Audit a face-detection training set (WIDER or COCO format) before training on it.

Why this module exists: a detector learns the conventions of its training set, not only its
faces. Two classic ways a training set goes wrong without anyone noticing are

* **inconsistent box conventions between groups**: if the faces added for one group (e.g.
  bald people, or one skin tone) were boxed "whole head" while the rest were boxed "face
  only", the group's boxes are taller or wider than everybody else's and adding them teaches
  the detector a second convention instead of helping it; and
* **leaks and redundancy**: the same photo (or a resized / re-encoded copy of it) several
  times in the training set, or in both the training and the validation split, which inflates
  the validation numbers.

This module computes, as a plain dict (JSON-ready), for one split and optionally a second one:

* counts: images, faces, images without faces, faces per value of each group column
  (``"unlabelled"`` for faces without a label);
* per group value: box size ``sqrt(w*h)`` in pixels and relative to the image
  (``sqrt(w*h / (W*H))``), aspect ratio ``h/w`` (median, 10th and 90th percentile), and a flag
  when the group's median aspect ratio differs from the median of all faces of the split by
  more than ``aspect_tolerance`` (10 % by default; only for groups with at least
  ``min_group_faces`` boxes);
* near-duplicate images: 64-bit dHash (OpenCV grayscale, resized to 9x8, one bit per pair of
  horizontally adjacent pixels) and pairs within a Hamming distance (4 by default), found
  with a chunked, vectorised comparison (no Python loop over pairs);
* overlap between the two splits: identical files (sha256), near-duplicates, same file names.

It only computes: reading the annotation formats and validating them (with messages that
name the file and the line, or the annotation), and scanning the images. Turning the result
into a report is :mod:`veil.eval.audit_report`; the command is ``veil data audit``.

Missing or unreadable images stop the audit (:class:`~veil.errors.MediaNotFoundError`,
:class:`~veil.errors.CorruptMediaError`) unless ``allow_partial=True``; then the result lists
them, sets ``"partial": True``, and every number is computed on the readable images only.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from ..errors import ConfigError, CorruptMediaError, InputError, MediaNotFoundError
from ..io.jsonfile import load_json
from ..io.paths import IMAGE_SUFFIXES
from ..io.wider_format import ATTRIBUTES, read_wider_gt

__all__ = [
    "UNLABELLED",
    "Split",
    "load_wider",
    "load_coco",
    "read_group_labels",
    "dhash",
    "hamming",
    "near_duplicate_pairs",
    "audit",
    "group_summary",
]

#: Group value of a face without a label.
UNLABELLED = "unlabelled"
#: Columns of a labels CSV that are never group columns.
_RESERVED = frozenset({"image", "face_index", "x", "y", "w", "h", *ATTRIBUTES})
#: How many examples of a finding the result lists (the counts are always complete).
LIST_CAP = 50
#: Pairs kept in memory for listing and clustering; beyond that only counted.
_PAIR_STORE_CAP = 200_000
#: Box tolerance (px) when a labels file repeats the box.
_BOX_ATOL = 0.01


# -- inputs ---------------------------------------------------------------------------
@dataclass
class Split:
    """The annotations of one split, face by face (nothing read from the images yet).

    Attributes:
        name: ``"train"`` or ``"val"`` (how the report calls it).
        format: ``"wider"`` or ``"coco"``.
        source: the annotation file.
        images_dir: the folder image paths are relative to.
        images: image paths relative to ``images_dir``, in annotation order.
        face_image: ``(n_faces,)`` index into ``images`` of each face.
        boxes: ``(n_faces, 4)`` float64 ``x, y, w, h`` in pixels.
        groups: ``{column: (n_faces,) object array of str}``; ``UNLABELLED`` where none.
        labels: the labels CSV, if one was read.
        declared_sizes: ``(n_images, 2)`` width, height the annotations declare (COCO), NaN
            where they do not.
    """

    name: str
    format: str
    source: Path
    images_dir: Path
    images: list[str]
    face_image: np.ndarray
    boxes: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    labels: Path | None = None
    declared_sizes: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        return len(self.boxes)


def _check_dir(images_dir: str | Path) -> Path:
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise MediaNotFoundError(f"images folder not found: {images_dir}")
    return images_dir


def _select_groups(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if wanted is None:
        return list(available)
    unknown = [g for g in wanted if g not in available]
    if unknown:
        raise ConfigError(f"group column(s) {', '.join(unknown)} not in {where} (have: {', '.join(available) or 'none'})")
    return list(wanted)


def read_group_labels(
    path: str | Path,
    images: Sequence[str],
    face_image: np.ndarray,
    boxes: np.ndarray,
    groups: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-face group labels from a CSV ``image,face_index,<group columns...>``.

    ``face_index`` is the face's position (from 0) in its image's face list. Columns ``x, y,
    w, h`` (and the WIDER attribute columns) are not groups; when ``x, y, w, h`` are present
    they must equal the annotation box. Empty cells read as :data:`UNLABELLED`.

    Returns ``{column: (n_faces,) object array}``.

    Raises:
        MediaNotFoundError: the file does not exist.
        CorruptMediaError: a column is missing or a row is malformed (file and line named).
        InputError: a row does not match the annotations: unknown image, face index out of
            range, box differs, face listed twice (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"labels file not found: {path}")
    index = {name: i for i, name in enumerate(images)}
    # faces of each image, in order: global face ids
    order = np.argsort(face_image, kind="stable")
    starts = np.searchsorted(face_image[order], np.arange(len(images) + 1))
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = list(reader.fieldnames or [])
        missing = [c for c in ("image", "face_index") if c not in cols]
        if missing:
            raise CorruptMediaError(f"{path}:1: missing column(s) {', '.join(missing)} (have: {', '.join(cols) or 'none'})")
        has_box = all(c in cols for c in "xywh")
        chosen = _select_groups([c for c in cols if c not in _RESERVED], groups, str(path))
        out = {c: np.full(len(boxes), UNLABELLED, dtype=object) for c in chosen}
        seen: dict[int, int] = {}
        try:
            for lineno, row in enumerate(reader, start=2):
                if None in row or any(row[c] is None for c in cols):
                    raise CorruptMediaError(f"{path}:{lineno}: expected {len(cols)} columns")
                name = row["image"].strip()
                if name not in index:
                    raise InputError(f"{path}:{lineno}: image {name!r} is not in the annotations")
                try:
                    k = int(row["face_index"])
                except ValueError:
                    raise CorruptMediaError(f"{path}:{lineno}: face_index must be an integer, got {row['face_index']!r}") from None
                i = index[name]
                n_img = int(starts[i + 1] - starts[i])
                if not 0 <= k < n_img:
                    raise InputError(f"{path}:{lineno}: face_index {k} out of range: {name!r} has {n_img} face(s) "
                                     f"(indices from 0)")
                face = int(order[starts[i] + k])
                if face in seen:
                    raise InputError(f"{path}:{lineno}: face {k} of {name!r} already labelled on line {seen[face]}")
                seen[face] = lineno
                if has_box:
                    try:
                        got = np.array([float(row[c]) for c in "xywh"])
                    except ValueError:
                        raise CorruptMediaError(f"{path}:{lineno}: x, y, w, h must be numbers") from None
                    if not np.allclose(got, boxes[face], rtol=0, atol=_BOX_ATOL):
                        raise InputError(f"{path}:{lineno}: box {_box_text(got)} of face {k} of {name!r} does not match "
                                         f"the annotation box {_box_text(boxes[face])}")
                for c in chosen:
                    v = row[c].strip()
                    out[c][face] = v if v else UNLABELLED
        except csv.Error as exc:
            raise CorruptMediaError(f"{path}:{reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise CorruptMediaError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    return out


def _box_text(b: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b) + "]"


def load_wider(
    gt: str | Path,
    images_dir: str | Path,
    labels: str | Path | None = None,
    groups: Sequence[str] | None = None,
    name: str = "train",
) -> Split:
    """A WIDER gt file (:func:`veil.io.wider_format.read_wider_gt`) and its images folder.

    ``labels``: optional per-face group CSV (see :func:`read_group_labels`).
    """
    images_dir = _check_dir(images_dir)
    data = read_wider_gt(gt)
    images = list(data)
    face_image = np.concatenate([np.full(len(g), i, np.int64) for i, g in enumerate(data.values())] or
                                [np.zeros(0, np.int64)])
    boxes = np.concatenate([g.boxes for g in data.values()] or [np.zeros((0, 4))]).reshape(-1, 4)
    split = Split(name, "wider", Path(gt), images_dir, images, face_image, boxes)
    if labels is not None:
        split.groups = read_group_labels(labels, images, face_image, boxes, groups)
        split.labels = Path(labels)
    elif groups:
        raise ConfigError("group columns were named but no labels file was given")
    return split


def load_coco(
    path: str | Path,
    images_dir: str | Path,
    labels: str | Path | None = None,
    groups: Sequence[str] | None = None,
    category: str | None = None,
    name: str = "train",
) -> Split:
    """A COCO instances JSON (``images``, ``annotations``, ``categories``) and its images folder.

    Every annotation is a face (or only those of ``category``, by name). Group labels come
    from each annotation's ``attributes`` object (e.g. ``{"skin": "V"}``) and/or from a
    labels CSV whose ``image`` is the ``file_name`` and ``face_index`` the position of the
    face among that image's (kept) annotations, in file order. CSV columns win.

    Raises:
        MediaNotFoundError: the file or the folder does not exist.
        CorruptMediaError: not JSON, a required key is missing or has the wrong type.
        InputError: an annotation points to an unknown image or category, a box is not
            positive, an image id or file name is listed twice.
    """
    path = Path(path)
    images_dir = _check_dir(images_dir)
    doc = load_json(path, "COCO annotation file")
    if not isinstance(doc, dict):
        raise CorruptMediaError(f"{path}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise CorruptMediaError(f"{path}: missing top-level key {key!r} (have: {', '.join(map(str, doc)) or 'none'})")
        if not isinstance(doc[key], list):
            raise CorruptMediaError(f"{path}: {key!r} must be a list, got {type(doc[key]).__name__}")

    def need(obj: Any, where: str, key: str, types: tuple[type, ...]) -> Any:
        if not isinstance(obj, dict):
            raise CorruptMediaError(f"{path}: {where}: expected an object, got {type(obj).__name__}")
        if key not in obj:
            raise CorruptMediaError(f"{path}: {where}: missing key {key!r}")
        v = obj[key]
        if not isinstance(v, types) or isinstance(v, bool):
            raise CorruptMediaError(f"{path}: {where}: {key!r} has the wrong type ({type(v).__name__})")
        return v

    cats: dict[Any, str] = {}
    for k, c in enumerate(doc["categories"]):
        cid = need(c, f"categories[{k}]", "id", (int, str))
        cats[cid] = str(c.get("name", cid))
    keep_cats = set(cats)
    if category is not None:
        keep_cats = {cid for cid, n in cats.items() if n == category}
        if not keep_cats:
            raise ConfigError(f"category {category!r} not in {path} (have: {', '.join(sorted(set(cats.values())))})")

    images: list[str] = []
    index: dict[Any, int] = {}
    declared = np.full((len(doc["images"]), 2), np.nan)
    names: dict[str, int] = {}
    for k, im in enumerate(doc["images"]):
        where = f"images[{k}]"
        iid = need(im, where, "id", (int, str))
        fname = need(im, where, "file_name", (str,))
        if iid in index:
            raise InputError(f"{path}: {where}: image id {iid!r} listed twice (first at images[{index[iid]}])")
        if fname in names:
            raise InputError(f"{path}: {where}: file_name {fname!r} listed twice (first at images[{names[fname]}])")
        index[iid], names[fname] = k, k
        images.append(fname)
        w, h = im.get("width"), im.get("height")
        if isinstance(w, (int, float)) and isinstance(h, (int, float)):
            declared[k] = (w, h)

    face_image: list[int] = []
    boxes: list[list[float]] = []
    attrs: list[dict[str, Any]] = []
    for k, ann in enumerate(doc["annotations"]):
        where = f"annotations[{k}]" + (f" (id {ann['id']!r})" if isinstance(ann, dict) and "id" in ann else "")
        iid = need(ann, where, "image_id", (int, str))
        bbox = need(ann, where, "bbox", (list,))
        cid = need(ann, where, "category_id", (int, str))
        if iid not in index:
            raise InputError(f"{path}: {where}: image_id {iid!r} is not in 'images'")
        if cid not in cats:
            raise InputError(f"{path}: {where}: category_id {cid!r} is not in 'categories'")
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox) \
                or not all(math.isfinite(v) for v in bbox):
            raise CorruptMediaError(f"{path}: {where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
        if bbox[2] <= 0 or bbox[3] <= 0:
            raise InputError(f"{path}: {where}: non-positive box size in bbox {bbox!r} (w and h must be > 0)")
        if cid not in keep_cats:
            continue
        face_image.append(index[iid])
        boxes.append([float(v) for v in bbox])
        a = ann.get("attributes")
        attrs.append(a if isinstance(a, dict) else {})

    fi = np.asarray(face_image, np.int64)
    order = np.argsort(fi, kind="stable")  # faces grouped by image, file order within an image
    fi = fi[order]
    bx = np.asarray(boxes, np.float64).reshape(-1, 4)[order]
    attrs = [attrs[i] for i in order]
    split = Split(name, "coco", path, images_dir, images, fi, bx, declared_sizes=declared)

    attr_cols = sorted({str(key) for a in attrs for key, v in a.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)})
    csv_groups: dict[str, np.ndarray] = {}
    if labels is not None:
        csv_groups = read_group_labels(labels, images, fi, bx, None)
        split.labels = Path(labels)
    available = list(dict.fromkeys([*attr_cols, *csv_groups]))
    chosen = _select_groups(available, groups, f"{path} attributes" + (f" or {labels}" if labels else ""))
    for c in chosen:
        if c in csv_groups:
            split.groups[c] = csv_groups[c]
        else:
            col = np.full(len(bx), UNLABELLED, dtype=object)
            for j, a in enumerate(attrs):
                v = a.get(c)
                if v is not None and str(v).strip():
                    col[j] = str(v).strip()
            split.groups[c] = col
    return split


# -- image scan ------------------------------------------------------------------------
_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    x = np.ascontiguousarray(x)
    return _POP8[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash of a grayscale image.

    The image is resized (area interpolation) to 9 columns x 8 rows; bit ``8*r + c`` is set
    when pixel ``(r, c + 1)`` is brighter than pixel ``(r, c)``. Re-encoding and resizing
    change few bits; different photos differ in about half of them.
    """
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA)
    bits = small[:, 1:] > small[:, :-1]
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def near_duplicate_pairs(
    a: np.ndarray, b: np.ndarray | None = None, max_distance: int = 4, store_cap: int = _PAIR_STORE_CAP,
) -> tuple[int, np.ndarray]:
    """Pairs of uint64 hashes within ``max_distance`` bits.

    With ``b`` None, pairs ``i < j`` within ``a``; otherwise pairs ``(i in a, j in b)``.
    Compares in chunks of about 4 M pairs (vectorised XOR + popcount), which is fine up to a
    few 10 k images. Returns ``(count, pairs)`` with ``pairs`` an ``(m, 3)`` int64 array of
    ``i, j, distance`` sorted by distance, holding at most ``store_cap`` pairs (the count is
    always exact).
    """
    a = np.asarray(a, np.uint64)
    same = b is None
    b = a if same else np.asarray(b, np.uint64)
    count, kept = 0, []
    n_kept = 0
    if len(a) == 0 or len(b) == 0:
        return 0, np.zeros((0, 3), np.int64)
    chunk = max(1, 4_000_000 // len(b))
    for s in range(0, len(a), chunk):
        blk = a[s:s + chunk]
        off = s + 1 if same else 0
        other = b[off:]
        if len(other) == 0:
            break
        d = _popcount(blk[:, None] ^ other[None, :])
        hit = d <= max_distance
        if same:  # keep j > i only: in this block row r is image s + r, column c is image off + c
            hit &= (np.arange(len(other))[None, :] + off) > (np.arange(len(blk))[:, None] + s)
        ii, jj = np.nonzero(hit)
        count += len(ii)
        if n_kept < store_cap and len(ii):
            take = min(len(ii), store_cap - n_kept)
            kept.append(np.stack([ii[:take] + s, jj[:take] + off, d[ii[:take], jj[:take]].astype(np.int64)], axis=1))
            n_kept += take
    pairs = np.concatenate(kept) if kept else np.zeros((0, 3), np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0], pairs[:, 2]))] if len(pairs) else pairs
    return count, pairs.astype(np.int64)


@dataclass
class _Scan:
    width: np.ndarray  # (n,) float, NaN where not read
    height: np.ndarray
    hashes: np.ndarray  # (n,) uint64
    sha256: list[str | None]
    ok: np.ndarray  # (n,) bool
    missing: list[str]
    unreadable: list[tuple[str, str]]


def _read_one(path: Path) -> tuple[int, int, int, str] | str:
    """(width, height, dhash, sha256) or an error text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not data:
        return "empty file"
    digest = hashlib.sha256(data).hexdigest()
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size  # header only: the stored pixel grid the boxes refer to
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "unreadable"
        return f"not a readable image ({type(exc).__name__})"
    # decode at reduced scale when the image is large (JPEG DCT scaling: much faster)
    side = min(w, h)
    flag = cv2.IMREAD_GRAYSCALE
    for f, factor in ((cv2.IMREAD_REDUCED_GRAYSCALE_8, 8), (cv2.IMREAD_REDUCED_GRAYSCALE_4, 4),
                      (cv2.IMREAD_REDUCED_GRAYSCALE_2, 2)):
        if side >= 32 * factor:
            flag = f
            break
    buf = np.frombuffer(data, np.uint8)
    gray = cv2.imdecode(buf, flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if gray is None or gray.size == 0:
        return "OpenCV cannot decode it"
    return w, h, dhash(gray), digest


def _scan(split: Split, allow_partial: bool, progress: Callable[[int, int], None] | None,
          workers: int | None) -> _Scan:
    n = len(split.images)
    paths = [split.images_dir / rel for rel in split.images]
    missing = [rel for rel, p in zip(split.images, paths) if not p.is_file()]
    if missing and not allow_partial:
        raise MediaNotFoundError(
            f"{len(missing)} of {n} image(s) listed in {split.source} are missing from {split.images_dir}: "
            f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''} (audit the rest with --allow-partial)")
    missing_set = set(missing)
    width, height = np.full(n, np.nan), np.full(n, np.nan)
    hashes = np.zeros(n, np.uint64)
    sha: list[str | None] = [None] * n
    ok = np.zeros(n, bool)
    unreadable: list[tuple[str, str]] = []
    todo = [i for i in range(n) if split.images[i] not in missing_set]
    workers = workers or min(8, os.cpu_count() or 1)
    done = len(missing)
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        for i, res in zip(todo, pool.map(_read_one, [paths[i] for i in todo], chunksize=16)):
            if isinstance(res, str):
                unreadable.append((split.images[i], res))
            else:
                width[i], height[i], hashes[i], sha[i] = res[0], res[1], np.uint64(res[2]), res[3]
                ok[i] = True
            done += 1
            if progress is not None:
                progress(done, n)
    if unreadable and not allow_partial:
        first = "; ".join(f"{split.images_dir / r}: {why}" for r, why in unreadable[:3])
        raise CorruptMediaError(f"{len(unreadable)} of {n} image(s) of {split.source} cannot be read: {first}"
                                f"{'; ...' if len(unreadable) > 3 else ''} (audit the rest with --allow-partial)")
    return _Scan(width, height, hashes, sha, ok, missing, unreadable)


def _declared_size_mismatch(split: Split, scan: _Scan) -> list[dict[str, Any]]:
    """Images whose declared COCO width/height matches neither orientation of the file."""
    if split.declared_sizes is None:
        return []
    out = []
    for i in np.flatnonzero(scan.ok & np.isfinite(split.declared_sizes).all(axis=1)):
        dw, dh = split.declared_sizes[i]
        w, h = scan.width[i], scan.height[i]
        if (dw, dh) != (w, h) and (dw, dh) != (h, w):
            out.append({"image": split.images[i], "declared": [dw, dh], "file": [w, h]})
    return out


# -- statistics ------------------------------------------------------------------------
def _pct(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90)}


#: Histogram bin edges stored in the result (values outside are counted in the end bins).
ASPECT_EDGES = np.round(np.linspace(0.4, 2.6, 45), 3)
SIZE_EDGES = np.round(np.geomspace(2, 2048, 41), 2)


def _hist(values: np.ndarray, edges: np.ndarray) -> list[int]:
    return np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0].tolist()


def _box_stats(sel: np.ndarray, size_px: np.ndarray, size_rel: np.ndarray, aspect: np.ndarray,
               overall_aspect: float | None, tolerance: float, min_faces: int) -> dict[str, Any]:
    n = int(sel.sum())
    st: dict[str, Any] = {"faces": n, "size_px": _pct(size_px[sel]), "size_rel": _pct(size_rel[sel]),
                          "aspect": _pct(aspect[sel]), "aspect_vs_overall": None, "flag": None,
                          "hist": {"aspect": _hist(aspect[sel], ASPECT_EDGES), "size_px": _hist(size_px[sel], SIZE_EDGES)}}
    if st["aspect"] and overall_aspect:
        rel = st["aspect"]["median"] / overall_aspect - 1.0
        st["aspect_vs_overall"] = rel
        st["flag"] = bool(abs(rel) > tolerance) if n >= min_faces else None
    return st


def _split_result(split: Split, scan: _Scan, dup_distance: int, aspect_tolerance: float,
                  min_group_faces: int) -> dict[str, Any]:
    n_img = len(split.images)
    face_ok = scan.ok[split.face_image] if split.n_faces else np.zeros(0, bool)
    faces_per_image = np.bincount(split.face_image, minlength=n_img) if n_img else np.zeros(0, np.int64)
    w, h = split.boxes[:, 2], split.boxes[:, 3]
    degenerate = face_ok & ((w <= 0) | (h <= 0))
    use = face_ok & ~degenerate  # boxes the size / aspect statistics are computed on
    W, H = scan.width[split.face_image], scan.height[split.face_image]
    with np.errstate(divide="ignore", invalid="ignore"):
        size_px = np.sqrt(np.clip(w * h, 0, None))
        size_rel = np.sqrt(np.clip(w * h, 0, None) / (W * H))
        aspect = h / w
    x, y = split.boxes[:, 0], split.boxes[:, 1]
    outside = face_ok & ((x < -1) | (y < -1) | (x + w > W + 1) | (y + h > H + 1))

    overall = _box_stats(use, size_px, size_rel, aspect, None, aspect_tolerance, min_group_faces)
    ref = overall["aspect"]["median"] if overall["aspect"] else None
    groups_counts: dict[str, dict[str, dict[str, int]]] = {}
    groups_boxes: dict[str, dict[str, Any]] = {}
    for col, vals in split.groups.items():
        values = sorted({v for v in vals[face_ok]} - {UNLABELLED}) + [UNLABELLED]
        groups_counts[col], groups_boxes[col] = {}, {}
        for v in values:
            sel = face_ok & (vals == v)
            groups_counts[col][v] = {"faces": int(sel.sum()),
                                     "images": int(len(np.unique(split.face_image[sel])))}
            groups_boxes[col][v] = _box_stats(use & (vals == v), size_px, size_rel, aspect, ref,
                                              aspect_tolerance, min_group_faces)

    # near-duplicates within the split (readable images only)
    idx = np.flatnonzero(scan.ok)
    count, pairs = near_duplicate_pairs(scan.hashes[idx], None, dup_distance)
    pairs = np.column_stack([idx[pairs[:, 0]], idx[pairs[:, 1]], pairs[:, 2]]) if len(pairs) else pairs
    clusters = _clusters(pairs)
    by_sha: dict[str | None, list[int]] = {}
    for i in idx:
        by_sha.setdefault(scan.sha256[i], []).append(int(i))
    identical = [v for v in by_sha.values() if len(v) > 1]

    return {
        "format": split.format,
        "annotations": str(split.source),
        "images_dir": str(split.images_dir),
        "labels": str(split.labels) if split.labels else None,
        "counts": {
            "images_listed": n_img,
            "faces_listed": split.n_faces,
            "images": int(scan.ok.sum()),
            "faces": int(face_ok.sum()),
            "images_without_faces": int((scan.ok & (faces_per_image == 0)).sum()),
            "degenerate_boxes": int(degenerate.sum()),
            "boxes_outside_image": int(outside.sum()),
            "groups": groups_counts,
        },
        "missing_images": scan.missing,
        "unreadable_images": [{"image": r, "reason": why} for r, why in scan.unreadable],
        "declared_size_mismatch": _declared_size_mismatch(split, scan),
        "boxes": {"overall": overall, "groups": groups_boxes,
                  "edges": {"aspect": ASPECT_EDGES.tolist(), "size_px": SIZE_EDGES.tolist()}},
        "near_duplicates": {
            "max_distance": dup_distance,
            "pairs_count": count,
            "clusters": len(clusters),
            "images_in_clusters": int(sum(len(c) for c in clusters)),
            "redundant_images": int(sum(len(c) - 1 for c in clusters)),
            "identical_files": {"groups": len(identical), "redundant_files": int(sum(len(v) - 1 for v in identical)),
                                "examples": [[split.images[i] for i in v] for v in identical[:LIST_CAP]]},
            "pairs": [{"a": split.images[i], "b": split.images[j], "distance": int(d),
                       "identical": scan.sha256[i] == scan.sha256[j]} for i, j, d in pairs[:LIST_CAP]],
            "clusters_listed": [[split.images[i] for i in c] for c in clusters[:LIST_CAP]],
        },
    }


def _clusters(pairs: np.ndarray) -> list[list[int]]:
    """Connected components of the pair graph (union-find), largest first."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in pairs.tolist():
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    comps: dict[int, list[int]] = {}
    for i in parent:
        comps.setdefault(root(i), []).append(i)
    return sorted((sorted(c) for c in comps.values()), key=lambda c: (-len(c), c[0]))


def _overlap(a: Split, sa: _Scan, b: Split, sb: _Scan, dup_distance: int) -> dict[str, Any]:
    ia, ib = np.flatnonzero(sa.ok), np.flatnonzero(sb.ok)
    sha_b: dict[str | None, list[int]] = {}
    for j in ib:
        sha_b.setdefault(sb.sha256[j], []).append(int(j))
    identical = [(int(i), j) for i in ia for j in sha_b.get(sa.sha256[i], [])]
    count, pairs = near_duplicate_pairs(sa.hashes[ia], sb.hashes[ib], dup_distance)
    base_b: dict[str, list[str]] = {}
    for rel in b.images:
        base_b.setdefault(rel.replace("\\", "/").rsplit("/", 1)[-1], []).append(rel)
    same_name = [(rel, o) for rel in a.images for o in base_b.get(rel.replace("\\", "/").rsplit("/", 1)[-1], [])]
    a_near = {int(ia[i]) for i, _, _ in pairs.tolist()}
    return {
        "identical_files": {"count": len(identical),
                            "examples": [{"train": a.images[i], "val": b.images[j]} for i, j in identical[:LIST_CAP]]},
        "near_duplicates": {"max_distance": dup_distance, "pairs_count": count,
                            "train_images_involved": len(a_near),
                            "pairs": [{"train": a.images[ia[i]], "val": b.images[ib[j]], "distance": int(d),
                                       "identical": sa.sha256[ia[i]] == sb.sha256[ib[j]]}
                                      for i, j, d in pairs[:LIST_CAP].tolist()]},
        "same_file_name": {"count": len(same_name),
                           "examples": [{"train": x, "val": y} for x, y in same_name[:LIST_CAP]]},
    }


def _unannotated(splits: Sequence[Split]) -> dict[str, dict[str, Any]]:
    """Image files in each images folder that no split lists (possibly forgotten annotations)."""
    listed: dict[Path, set[str]] = {}
    for s in splits:
        listed.setdefault(s.images_dir.resolve(), set()).update(r.replace("\\", "/") for r in s.images)
    out = {}
    for s in splits:
        root = s.images_dir.resolve()
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        extra = [f for f in files if f not in listed[root]]
        out[s.name] = {"count": len(extra), "examples": extra[:LIST_CAP]}
    return out


def audit(
    train: Split,
    val: Split | None = None,
    dup_distance: int = 4,
    allow_partial: bool = False,
    aspect_tolerance: float = 0.10,
    min_group_faces: int = 30,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Audit ``train`` (and its overlap with ``val``); returns a JSON-ready dict.

    Keys: ``settings``, ``partial`` (True when images were missing or unreadable and
    ``allow_partial`` let the audit go on), ``train``, ``val`` (None without a second split;
    same layout as ``train``), ``overlap`` (None without ``val``), ``unannotated_files``.
    See the module docstring for what each number means.

    ``progress(split_name, done, total)`` is called as images are scanned.

    Raises:
        MediaNotFoundError: images are missing (and not ``allow_partial``).
        CorruptMediaError: images cannot be decoded (and not ``allow_partial``).
        ConfigError: a setting is out of range.
    """
    if not 0 <= dup_distance <= 64:
        raise ConfigError(f"dup distance must be between 0 and 64 bits, got {dup_distance}")
    if not 0 < aspect_tolerance < 1:
        raise ConfigError(f"aspect tolerance must be between 0 and 1, got {aspect_tolerance}")
    splits = [train] + ([val] if val is not None else [])
    if val is not None and val.name == train.name:
        raise ConfigError("the two splits need different names")
    scans = []
    for s in splits:
        cb = (lambda done, total, _n=s.name: progress(_n, done, total)) if progress else None
        scans.append(_scan(s, allow_partial, cb, workers))
    results = [_split_result(s, sc, dup_distance, aspect_tolerance, min_group_faces) for s, sc in zip(splits, scans)]
    partial = any(sc.missing or sc.unreadable for sc in scans)
    return {
        "settings": {"dup_distance": dup_distance, "aspect_tolerance": aspect_tolerance,
                     "min_group_faces": min_group_faces, "allow_partial": allow_partial, "hash": "dhash-64 (9x8)",
                     "list_cap": LIST_CAP},
        "partial": partial,
        "train": results[0],
        "val": results[1] if val is not None else None,
        "overlap": _overlap(train, scans[0], val, scans[1], dup_distance) if val is not None else None,
        "unannotated_files": _unannotated(splits),
    }


def group_summary(result: Mapping[str, Any], split: str = "train") -> list[dict[str, Any]]:
    """Flat rows ``{column, value, faces, images, size_px, aspect, aspect_vs_overall, flag}``."""
    r = result[split]
    rows = []
    for col, values in r["boxes"]["groups"].items():
        for v, st in values.items():
            c = r["counts"]["groups"][col][v]
            rows.append({"column": col, "value": v, "faces": c["faces"], "images": c["images"],
                         "size_px": st["size_px"], "size_rel": st["size_rel"], "aspect": st["aspect"],
                         "aspect_vs_overall": st["aspect_vs_overall"], "flag": st["flag"]})
    return rows
