"""Does an anonymized face still get re-identified? A face-recognition attack as a metric.

The attacker is dlib's 128-d ResNet face descriptor (the model behind ``face_recognition``),
with dlib's standard decision threshold: two faces are the same person when the Euclidean
distance of their descriptors is below 0.6. The attacker *knows where the face was*: it does
not need to find the anonymized face (a blurred face is often no longer detected, which
would flatter the filter); it is handed the face's box in the original image.

Protocol (:func:`reidentification_rate`), for labelled pairs ``(x, y, same person?)``:

1. Only same-person pairs count. In both original images the largest face (by box area)
   found by veil's detector at native resolution (score >= 0.5) is *the* face; a pair where
   either image has no face is skipped (and reported as such).
2. Image x is anonymized with the filter under test, given only that face.
3. The attacker embeds the anonymized x at the original face location (dlib's 5-point shape
   predictor run inside the original box, then ``compute_face_descriptor``) and the
   original y likewise; the pair *matches* when the distance is below the threshold.
4. Reported: pairs matched / pairs evaluated, the mean distance, per pair the distance and
   whether it matched, and the same numbers with no anonymization (the baseline, which
   must match nearly always for the test to mean anything).

A stronger attacker is reported alongside (``aligned``): it also knows the face's exact
alignment, i.e. it reuses the 5 landmarks the shape predictor found on the *original* x
instead of re-fitting them on the anonymized pixels.

A second kind of attacker is veil's own detector (``redetected``): is the anonymized face
still *found* as a face? The anonymized x goes through the evaluator's detector again; the
best score of a detection overlapping the original box (IoU >= :data:`REDETECT_IOU`, lenient
on purpose) is recorded, and the face counts as re-detected when that score reaches veil's
operating threshold (``DetectConfig().threshold``). A face that is still detected is still
face-shaped: a weak filter shows up here before it shows up in the descriptor distance.

On ``reid/deepface`` (``master.csv``) the same-person pairs are the 38 rows with
``Decision == Yes``; a face is detected in every one of their images, so N = 38.

Privacy: crops and descriptors live only in memory; results hold file names, distances and
booleans, never pixels or embeddings.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..faces import Faces
from ..identify.embedder import DLIB_MODELS, DLIB_THRESHOLD, DlibEmbedder  # the product's embedder

__all__ = [
    "MATCH_THRESHOLD",
    "REDETECT_IOU",
    "DLIB_MODELS",
    "Pair",
    "PairResult",
    "ReidResult",
    "DlibEmbedder",
    "ReidEvaluator",
    "read_pairs",
    "load_rgb",
    "largest_face",
    "reidentification_rate",
]

#: dlib's standard decision threshold for its 128-d descriptor (same person below it).
MATCH_THRESHOLD = DLIB_THRESHOLD
#: a detection on the anonymized image is the same face when its box overlaps the original
#: face box by at least this IoU (lenient: a blurred face's box drifts and grows)
REDETECT_IOU = 0.3
#: re-detection scores are recorded down to this score (0 = nothing found at all)
REDETECT_MIN_SCORE = 0.05

AnonymizeFn = Callable[[np.ndarray, Faces], np.ndarray]


@dataclass(frozen=True)
class Pair:
    file_x: str
    file_y: str
    same: bool


def read_pairs(csv_path: str | Path) -> list[Pair]:
    """Pairs from a ``file_x,file_y,Decision`` CSV (deepface's ``master.csv``; CRLF-safe)."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        r = {k.strip(): (v or "").strip() for k, v in r.items() if k}
        out.append(Pair(r["file_x"], r["file_y"], r["Decision"].lower() == "yes"))
    return out


def load_rgb(path: str | Path) -> np.ndarray:
    """An image as RGB uint8, EXIF orientation applied."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)  # writable copy


def largest_face(faces: Faces) -> Faces:
    """The face with the largest box area (empty Faces if there is none)."""
    if not len(faces):
        return faces
    wh = faces.wh
    return faces[int(np.argmax(wh[:, 0] * wh[:, 1]))]


@dataclass(frozen=True)
class PairResult:
    file_x: str
    file_y: str
    distance: float  # anonymized x vs original y, landmarks re-fitted on the anonymized x
    matched: bool
    distance_aligned: float  # same, with the landmarks of the original x (stronger attacker)
    matched_aligned: bool
    baseline_distance: float  # original x vs original y
    baseline_matched: bool
    redetect_score: float = 0.0  # veil's best detection score on the anonymized x at the face (0: none)
    redetected: bool = False  # ... at or above veil's operating threshold

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ReidResult:
    """Outcome of one filter on the same-person pairs. ``rate`` = matched / n."""

    pairs: list[PairResult]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (file_x, file_y, why)
    threshold: float = MATCH_THRESHOLD
    redetect_threshold: float = 0.2  # veil's operating detection threshold when the run was made

    @property
    def n(self) -> int:
        return len(self.pairs)

    @property
    def matched(self) -> int:
        return sum(p.matched for p in self.pairs)

    @property
    def matched_aligned(self) -> int:
        return sum(p.matched_aligned for p in self.pairs)

    @property
    def baseline_matched(self) -> int:
        return sum(p.baseline_matched for p in self.pairs)

    @property
    def redetected(self) -> int:
        return sum(p.redetected for p in self.pairs)

    @property
    def max_redetect_score(self) -> float:
        return float(max(p.redetect_score for p in self.pairs)) if self.pairs else float("nan")

    @property
    def rate(self) -> float:
        return self.matched / self.n if self.n else float("nan")

    @property
    def mean_distance(self) -> float:
        return float(np.mean([p.distance for p in self.pairs])) if self.pairs else float("nan")

    @property
    def mean_distance_aligned(self) -> float:
        return float(np.mean([p.distance_aligned for p in self.pairs])) if self.pairs else float("nan")

    @property
    def baseline_mean_distance(self) -> float:
        return float(np.mean([p.baseline_distance for p in self.pairs])) if self.pairs else float("nan")

    @property
    def min_distance(self) -> float:
        return float(min(min(p.distance, p.distance_aligned) for p in self.pairs)) if self.pairs else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "matched": self.matched,
            "rate": round(self.rate, 4),
            "mean_distance": round(self.mean_distance, 4),
            "matched_aligned": self.matched_aligned,
            "mean_distance_aligned": round(self.mean_distance_aligned, 4),
            "min_distance": round(self.min_distance, 4),
            "baseline_matched": self.baseline_matched,
            "baseline_mean_distance": round(self.baseline_mean_distance, 4),
            "redetected": self.redetected,
            "max_redetect_score": round(self.max_redetect_score, 4),
            "threshold": self.threshold,
            "redetect_threshold": self.redetect_threshold,
            "skipped": [list(s) for s in self.skipped],
            "pairs": [p.as_dict() for p in self.pairs],
        }


@dataclass(frozen=True)
class _Face:
    box: np.ndarray  # (4,) xyxy in the original image
    faces: Faces  # the same face as a one-row Faces (what filters are given)
    landmarks: np.ndarray  # dlib 5 points fitted on the original image
    descriptor: np.ndarray  # of the original face (memory only)
    n_faces: int  # faces detected in the image


class ReidEvaluator:
    """Runs the protocol; caches detections and original descriptors across filters.

    Everything cached is kept in memory only, and only for the images of the pairs given.
    """

    def __init__(self, image_dir: str | Path, detector=None, embedder: DlibEmbedder | None = None,
                 threshold: float = MATCH_THRESHOLD, min_score: float = 0.5,
                 redetect_threshold: float | None = None):
        from ..config import DetectConfig

        self.image_dir = Path(image_dir)
        if detector is None:
            from ..detect import build_detector

            detector = build_detector(DetectConfig(max_side=0), batch=1)
        self.detector = detector
        self.embedder = embedder or DlibEmbedder()
        self.threshold = threshold
        self.min_score = min_score
        self.redetect_threshold = DetectConfig().threshold if redetect_threshold is None else redetect_threshold
        self._faces: dict[str, _Face | None] = {}

    def image(self, name: str) -> np.ndarray:
        return load_rgb(self.image_dir / name)

    def face(self, name: str) -> _Face | None:
        """The largest face of an image (None when no face is found), cached."""
        if name not in self._faces:
            rgb = self.image(name)
            found = self.detector.detect([rgb], self.min_score)[0]
            face = largest_face(found)
            if not len(face):
                self._faces[name] = None
            else:
                box = face.xyxy[0].astype(np.float64)
                lm = self.embedder.landmarks(rgb, box)
                desc = self.embedder.embed(rgb, box)
                self._faces[name] = _Face(box, face, lm, desc, len(found))
        return self._faces[name]

    def redetect_score(self, rgb: np.ndarray, box: np.ndarray) -> float:
        """veil's best detection score at ``box`` in ``rgb`` (IoU >= REDETECT_IOU), 0 if none."""
        from ..boxes import box_iou

        found = self.detector.detect([rgb], REDETECT_MIN_SCORE)[0]
        if not len(found):
            return 0.0
        near = box_iou(np.asarray(box, np.float64)[None], found.xyxy.astype(np.float64))[0] >= REDETECT_IOU
        return float(found.scores[near].max()) if near.any() else 0.0

    def same_person_pairs(self, pairs: Iterable[Pair]) -> tuple[list[Pair], list[tuple[str, str, str]]]:
        """Same-person pairs with a face in both images, and the skipped ones with the reason."""
        keep, skipped = [], []
        for p in pairs:
            if not p.same:
                continue
            missing = [f for f in (p.file_x, p.file_y) if self.face(f) is None]
            if missing:
                skipped.append((p.file_x, p.file_y, "no face detected in " + ", ".join(missing)))
            else:
                keep.append(p)
        return keep, skipped

    def evaluate(self, pairs: Iterable[Pair], anonymize_fn: AnonymizeFn | None) -> ReidResult:
        """Run the protocol with ``anonymize_fn(rgb, faces) -> rgb`` (None = no anonymization)."""
        keep, skipped = self.same_person_pairs(pairs)
        results = []
        # group by file_x so each image is loaded and anonymized once
        by_x: dict[str, list[Pair]] = {}
        for p in keep:
            by_x.setdefault(p.file_x, []).append(p)
        for fx, group in by_x.items():
            fxace = self.face(fx)
            assert fxace is not None
            if anonymize_fn is None:
                d_anon = d_al = None
                found = float(fxace.faces.scores[0])  # the original face, found at >= min_score
            else:
                rgb = self.image(fx)
                anon = anonymize_fn(rgb.copy(), fxace.faces)
                if anon.shape != rgb.shape or anon.dtype != np.uint8:
                    raise ValueError("anonymize_fn must return an image of the input's shape, uint8")
                d_anon = self.embedder.embed(anon, fxace.box)
                d_al = self.embedder.embed(anon, fxace.landmarks)
                found = self.redetect_score(anon, fxace.box)
                del rgb, anon
            for p in group:
                fy = self.face(p.file_y)
                assert fy is not None
                base = float(np.linalg.norm(fxace.descriptor - fy.descriptor))
                dist = base if d_anon is None else float(np.linalg.norm(d_anon - fy.descriptor))
                dist_al = base if d_al is None else float(np.linalg.norm(d_al - fy.descriptor))
                results.append(PairResult(p.file_x, p.file_y, dist, dist < self.threshold, dist_al,
                                          dist_al < self.threshold, base, base < self.threshold,
                                          found, found >= self.redetect_threshold))
        order = {(p.file_x, p.file_y): i for i, p in enumerate(keep)}
        results.sort(key=lambda r: order[(r.file_x, r.file_y)])
        return ReidResult(results, skipped, self.threshold, self.redetect_threshold)


def reidentification_rate(pairs: Iterable[Pair], anonymize_fn: AnonymizeFn | None, image_dir: str | Path | None = None,
                          *, evaluator: ReidEvaluator | None = None, **kw: Any) -> ReidResult:
    """Re-identification of anonymized faces on same-person ``pairs`` (see the module docstring).

    ``anonymize_fn(rgb, faces) -> rgb`` hides the face given as a one-row :class:`Faces`
    (its box is the detected box in the original image). Pass ``evaluator`` to reuse
    detections and descriptors across filters; otherwise ``image_dir`` is required.
    """
    if evaluator is None:
        if image_dir is None:
            raise ValueError("reidentification_rate needs image_dir or an evaluator")
        evaluator = ReidEvaluator(image_dir, **kw)
    return evaluator.evaluate(pairs, anonymize_fn)
