"""The one data structure that carries faces from stage to stage.

Every stage of the pipeline (detect -> track -> identify / depth -> policy -> render)
reads and returns a :class:`Faces`. It is columnar (one numpy array per attribute, one
row per face) so that stages stay vectorised, and it is never mutated in place: a stage
returns a new object built with :meth:`Faces.with_columns`. A stage that does not know a
column leaves it alone, so the columns added by later stages (track id, identity,
distance) travel through untouched.

The ``decision`` column is what ``render`` acts on, and ``reason`` says why, in words a
report reader can follow. Until a policy has spoken, every face is anonymized: the safe
default for a privacy tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterator

import numpy as np

__all__ = ["Faces", "ANONYMIZE", "KEEP", "DATA_COLUMNS",
           "SOURCE", "DETECTED", "LOW", "COASTED", "INTERPOLATED", "EXTENDED", "OBSERVED",
           "ID_STATE", "ID_DISTANCE", "ID_CANDIDATE", "MATCH", "UNCERTAIN", "UNKNOWN", "PENDING",
           "DISTANCE_SOURCE", "DISTANCE_KEY"]

#: Decision values. Kept as plain strings so that reports stay readable.
ANONYMIZE = "anonymize"
KEEP = "keep"

# -- the vocabulary of ``Faces.data``: column names and their values ----------------------
# One place for the keys stages write and read (the tracker, the identify and distance
# annotators, the rules, plans, reports); values stay plain strings so reports read well.

#: how the tracker got a row (:mod:`veil.track`); absent on untracked faces, which count as detected
SOURCE = "source"
DETECTED = "detected"  #: a detection at or above the operating threshold
LOW = "low"  #: a low-score detection that continues a track
COASTED = "coasted"  #: no detection: the track's predicted position
INTERPOLATED = "interpolated"  #: between two detections of the track (look-ahead)
EXTENDED = "extended"  #: before the track's first detection (look-ahead)
#: the sources that are a real detection on that frame
OBSERVED = (DETECTED, LOW)

#: the identify stage's verdict (:mod:`veil.identify.track_identity`): MATCH (``identity`` is
#: the name), UNCERTAIN, UNKNOWN or PENDING (no good view yet); rules anonymize the last two
ID_STATE = "id_state"
MATCH, UNCERTAIN, UNKNOWN, PENDING = "match", "uncertain", "unknown", "pending"
#: float32 distance to the closest enrolled person (NaN: none)
ID_DISTANCE = "id_distance"
#: the closest enrolled person's name, also when not a match (reports may name it)
ID_CANDIDATE = "id_candidate"

#: how ``distance_m`` was found (:mod:`veil.depth.annotator`): landmarks, rgbd, mono-depth,
#: ``+track`` when carried by the track, or ``unknown: why``
DISTANCE_SOURCE = "distance_source"
#: float32, orders the faces of one frame by distance (metres, or the landmark scale's inverse)
DISTANCE_KEY = "distance_key"

#: every ``data`` column veil's stages write -> the stage that writes it
DATA_COLUMNS: dict[str, str] = {
    SOURCE: "track", ID_STATE: "identify", ID_DISTANCE: "identify", ID_CANDIDATE: "identify",
    DISTANCE_SOURCE: "depth", DISTANCE_KEY: "depth",
}


def _as_float(a: Any, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    if arr.shape[1:] != shape_tail:
        raise ValueError(f"Faces.{name} must have shape (n, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    return arr


@dataclass(frozen=True)
class Faces:
    """Faces found in one frame.

    Attributes:
        xyxy: ``(n, 4)`` float32 boxes in frame pixels, ``x1, y1, x2, y2``.
        scores: ``(n,)`` float32 detector confidence in ``[0, 1]``.
        landmarks: ``(n, 5, 2)`` float32 points (right eye, left eye, nose, right and
            left mouth corner as seen in the image), NaN where the detector gives none.
        track_id: ``(n,)`` int64, ``-1`` while untracked.
        identity: ``(n,)`` object, name of a recognised person or ``None``.
        distance_m: ``(n,)`` float32 estimated distance to the camera, NaN if unknown.
        decision: ``(n,)`` object, :data:`ANONYMIZE` or :data:`KEEP`.
        reason: ``(n,)`` object, a short human-readable reason for the decision.
        data: extra per-face columns, each an array of length ``n``.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    # None (or left out) when building: the column's default, filled in by __post_init__; an
    # array for every reader. A dataclass cannot type the argument apart from the attribute,
    # so the attribute's type is the one declared, and the None default is allowed by hand.
    landmarks: np.ndarray = None  # type: ignore[assignment]
    track_id: np.ndarray = None  # type: ignore[assignment]
    identity: np.ndarray = None  # type: ignore[assignment]
    distance_m: np.ndarray = None  # type: ignore[assignment]
    decision: np.ndarray = None  # type: ignore[assignment]
    reason: np.ndarray = None  # type: ignore[assignment]
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = _as_float(self.xyxy, (4,), "xyxy")
        n = len(xyxy)
        set_ = object.__setattr__
        set_(self, "xyxy", xyxy)
        set_(self, "scores", _as_float(self.scores, (), "scores") if n else np.zeros(0, np.float32))
        if len(self.scores) != n:
            raise ValueError(f"Faces.scores has {len(self.scores)} rows, xyxy has {n}")
        if self.landmarks is None:
            lm = np.full((n, 5, 2), np.nan, np.float32)
        else:
            lm = _as_float(self.landmarks, (5, 2), "landmarks")
        set_(self, "landmarks", lm)
        defaults: dict[str, tuple[Any, Any]] = {
            "track_id": (np.int64, -1),
            "identity": (object, None),
            "distance_m": (np.float32, np.nan),
            "decision": (object, ANONYMIZE),
            "reason": (object, "detected face"),
        }
        for name, (dtype, fill) in defaults.items():
            value = getattr(self, name)
            if value is None:
                arr = np.full(n, fill, dtype=dtype)
            else:
                arr = np.asarray(value, dtype=dtype).reshape(-1)
            set_(self, name, arr)
        for name in ("landmarks", *defaults):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Faces.{name} has {len(getattr(self, name))} rows, xyxy has {n}")
        for key, col in self.data.items():
            if len(col) != n:
                raise ValueError(f"Faces.data[{key!r}] has {len(col)} rows, xyxy has {n}")

    # -- constructors --------------------------------------------------------------
    @classmethod
    def empty(cls) -> "Faces":
        return cls(xyxy=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32))

    @classmethod
    def concatenate(cls, parts: list["Faces"]) -> "Faces":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set.intersection(*(set(p.data) for p in parts))
        kwargs = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls) if f.name != "data"}
        return cls(**kwargs, data={k: np.concatenate([p.data[k] for p in parts]) for k in keys})

    # -- access --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> "Faces":
        """Select rows with a boolean mask, an index array or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        kwargs = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "data"}
        return Faces(**kwargs, data={k: v[index] for k, v in self.data.items()})

    def __iter__(self) -> Iterator["Faces"]:
        for i in range(len(self)):
            yield self[i]

    def with_columns(self, **changes: Any) -> "Faces":
        """Return a copy with some columns replaced (the original is left untouched)."""
        return replace(self, **changes)

    @property
    def wh(self) -> np.ndarray:
        """Box widths and heights, ``(n, 2)``."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    @property
    def to_anonymize(self) -> np.ndarray:
        """Boolean mask of the faces the renderer must hide."""
        return self.decision == ANONYMIZE

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> "Faces":
        """Map boxes and landmarks by ``x * sx + dx``, ``y * sy + dy`` (resizing, tiling)."""
        mul = np.array([sx, sy], np.float32)
        add = np.array([dx, dy], np.float32)
        xyxy = (self.xyxy.reshape(-1, 2, 2) * mul + add).reshape(-1, 4)
        return self.with_columns(xyxy=xyxy, landmarks=self.landmarks * mul + add)

    def clipped(self, width: int, height: int) -> "Faces":
        """Clip boxes to the frame; drops no face (a privacy tool never drops detections)."""
        xyxy = self.xyxy.copy()
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
        return self.with_columns(xyxy=xyxy)

    def records(self) -> list[dict[str, Any]]:
        """Plain dicts for reports: geometry, scores and decisions, never pixels."""
        out = []
        for i in range(len(self)):
            lm = self.landmarks[i]
            rec: dict[str, Any] = {
                "box": [round(float(v), 1) for v in self.xyxy[i]],
                "score": round(float(self.scores[i]), 4),
                "landmarks": None if np.isnan(lm).any() else [[round(float(x), 1), round(float(y), 1)] for x, y in lm],
                "anonymized": bool(self.decision[i] == ANONYMIZE),
                "reason": str(self.reason[i]),
            }
            if self.track_id[i] >= 0:
                rec["track_id"] = int(self.track_id[i])
            if self.identity[i] is not None:
                rec["identity"] = str(self.identity[i])
            if not np.isnan(self.distance_m[i]):
                rec["distance_m"] = round(float(self.distance_m[i]), 2)
            if DISTANCE_SOURCE in self.data:
                rec[DISTANCE_SOURCE] = str(self.data[DISTANCE_SOURCE][i])
            out.append(rec)
        return out
