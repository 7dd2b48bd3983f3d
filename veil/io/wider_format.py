"""The WIDER FACE text formats: ground truth, and detections in the submission layout.

Ground truth (``wider_face_*_bbx_gt.txt``), one block per image::

    0--Parade/0_Parade_marchingband_1_20.jpg
    2
    541 354 36 46 1 0 0 0 0 0
    100 359 21 32 2 0 0 0 0 0

i.e. the image path relative to ``images/``, the face count, then one line per face:
``x y w h blur expression illumination invalid occlusion pose``. In the official files an
image with no face is followed by one dummy line of zeros, which is skipped.

Detections (what the official ``eval_tools`` read), one file per image at
``<dir>/<event>/<name>.txt``::

    0_Parade_marchingband_1_20
    2
    541.0 354.0 36.0 46.0 0.998
    100.0 359.0 21.0 32.0 0.712

Boxes are ``x y w h`` in image pixels (top-left corner, width, height).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CorruptMediaError, MediaNotFoundError, OutputError
from ..faces import Faces
from .atomic import atomic_output

__all__ = [
    "GtImage",
    "ATTRIBUTES",
    "read_wider_gt",
    "write_wider_predictions",
    "read_wider_predictions",
    "faces_to_xywh",
    "image_key",
]

#: The per-face attribute columns of the gt file, after ``x y w h``, in file order.
ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


@dataclass(frozen=True)
class GtImage:
    """Ground truth of one image.

    Attributes:
        path: image path relative to ``images/`` (``event/name.jpg``).
        boxes: ``(n, 4)`` float64 ``x, y, w, h``.
        attributes: ``(n, 6)`` int attribute columns, see :data:`ATTRIBUTES`.
    """

    path: str
    boxes: np.ndarray
    attributes: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def attribute(self, name: str) -> np.ndarray:
        return self.attributes[:, ATTRIBUTES.index(name)]

    @property
    def invalid(self) -> np.ndarray:
        """Boolean mask of faces marked invalid (ignored by the protocol)."""
        return self.attribute("invalid") != 0

    @property
    def valid(self) -> np.ndarray:
        return ~self.invalid


def image_key(path: str) -> str:
    """``event/name`` without extension, with forward slashes: how gt and predictions meet."""
    p = path.replace("\\", "/").strip()
    stem, ext = os.path.splitext(p)
    return stem if ext.lower() in (".jpg", ".jpeg", ".png", ".txt") else p


def _numbers(text: str) -> list[float] | None:
    try:
        return [float(t) for t in text.split()]
    except ValueError:
        return None


def read_wider_gt(path: str | Path) -> dict[str, GtImage]:
    """Read a WIDER gt file into ``{"event/name.jpg": GtImage}``, in file order.

    Lines with only ``x y w h`` are accepted too (attributes then read as 0).

    Raises:
        MediaNotFoundError: the file does not exist.
        CorruptMediaError: the layout is broken; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"WIDER gt file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CorruptMediaError(f"{path}: not a text file ({exc.reason})") from None

    def fail(lineno: int, msg: str) -> CorruptMediaError:
        return CorruptMediaError(f"{path}:{lineno}: {msg}")

    out: dict[str, GtImage] = {}
    i, n_lines = 0, len(lines)
    while i < n_lines:
        name = lines[i].strip()
        if not name:  # blank lines between blocks / at the end
            i += 1
            continue
        name_line = i + 1
        if _numbers(name) is not None:
            raise fail(name_line, f"expected an image path, got {name!r}")
        if name in out:
            raise fail(name_line, f"image {name!r} listed twice")
        i += 1
        if i >= n_lines or not lines[i].strip():
            raise fail(i + 1, f"missing face count after {name!r}")
        try:
            count = int(lines[i].strip())
        except ValueError:
            raise fail(i + 1, f"face count must be an integer, got {lines[i].strip()!r}") from None
        if count < 0:
            raise fail(i + 1, f"negative face count {count}")
        i += 1
        rows: list[list[float]] = []
        for _ in range(count):
            if i >= n_lines:
                raise fail(i + 1, f"file ends inside {name!r}: {count} faces announced, {len(rows)} found")
            vals = _numbers(lines[i])
            if vals is None or len(vals) not in (4, 4 + len(ATTRIBUTES)):
                raise fail(i + 1, f"expected 'x y w h' plus {len(ATTRIBUTES)} attributes, got {lines[i].strip()!r}")
            if vals[2] < 0 or vals[3] < 0:
                raise fail(i + 1, f"negative box size in {lines[i].strip()!r}")
            rows.append(vals + [0.0] * (4 + len(ATTRIBUTES) - len(vals)))
            i += 1
        if count == 0 and i < n_lines:
            dummy = _numbers(lines[i])
            if dummy is not None and lines[i].strip() and all(v == 0 for v in dummy):
                i += 1  # the official files' placeholder line for an image without faces
        arr = np.asarray(rows, np.float64).reshape(-1, 4 + len(ATTRIBUTES))
        out[name] = GtImage(path=name, boxes=arr[:, :4].copy(), attributes=arr[:, 4:].astype(np.int64))
    return out


def faces_to_xywh(faces: Faces) -> tuple[np.ndarray, np.ndarray]:
    """``Faces`` -> (``(n, 4)`` float64 ``x, y, w, h``, ``(n,)`` float64 scores)."""
    xyxy = faces.xyxy.astype(np.float64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    return xywh.reshape(-1, 4), faces.scores.astype(np.float64).reshape(-1)


def write_wider_predictions(out_dir: str | Path, rel_image_path: str, faces: Faces) -> Path:
    """Write one image's detections as ``<out_dir>/<event>/<name>.txt`` (submission layout).

    Faces are written best score first. The file is written to a temporary name and renamed
    (:func:`~veil.io.atomic.atomic_output`), so a crash never leaves a half-written file.
    Returns the path written.
    """
    key = image_key(rel_image_path)
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise OutputError(f"not a relative image path: {rel_image_path!r}")
    target = Path(out_dir) / f"{key}.txt"
    xywh, scores = faces_to_xywh(faces)
    order = np.argsort(-scores, kind="stable")
    body = [key.rsplit("/", 1)[-1], str(len(order))]
    body += [f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} {s:.6f}" for (x, y, w, h), s in zip(xywh[order], scores[order])]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {target.parent}: {exc.strerror or exc}") from None
    with atomic_output(target) as tmp:
        tmp.write_text("\n".join(body) + "\n", encoding="utf-8")
    return target


def read_wider_predictions(pred_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a submission folder into ``{"event/name.jpg": (boxes_xywh (n, 4), scores (n,))}``.

    Keys use the ``.jpg`` extension (all WIDER images are JPEGs) so that they match the gt
    keys of :func:`read_wider_gt`; :func:`veil.eval.widerface.evaluate` also accepts keys
    without extension.

    Raises:
        MediaNotFoundError: the folder does not exist.
        CorruptMediaError: a file is malformed; the message names the file and line.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise MediaNotFoundError(f"WIDER prediction folder not found: {pred_dir}")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for f in sorted(pred_dir.rglob("*.txt")):
        rel = f.relative_to(pred_dir).as_posix()
        lines = f.read_text(encoding="utf-8").splitlines()
        if len(lines) < 2:
            raise CorruptMediaError(f"{f}:{len(lines) + 1}: expected the image name then the face count")
        try:
            count = int(float(lines[1].strip()))
        except ValueError:
            raise CorruptMediaError(f"{f}:2: face count must be a number, got {lines[1].strip()!r}") from None
        rows = []
        for k in range(2, 2 + count):
            vals = _numbers(lines[k]) if k < len(lines) else None
            if vals is None or len(vals) < 5:
                got = repr(lines[k].strip()) if k < len(lines) else "end of file"
                raise CorruptMediaError(f"{f}:{k + 1}: expected 'x y w h score', got {got}")
            rows.append(vals[:5])
        arr = np.asarray(rows, np.float64).reshape(-1, 5)
        out[rel[: -len(".txt")] + ".jpg"] = (arr[:, :4].copy(), arr[:, 4].copy())
    return out
