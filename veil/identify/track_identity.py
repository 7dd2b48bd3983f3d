"""The identify stage: who is each face, decided per track, at low cost.

Embedding every face of every frame would cost ~75 ms per face-frame. Instead a track is
embedded on its first good view (a detected row, not an interpolated or coasted one, with
landmarks, big enough, frontal enough, score high enough), re-verified every
``reverify_frames`` frames, sooner when a clearly better view appears or while its verdict
is uncertain, and never more than once per ``min_gap`` face-frames of the track after the
first. Each embedding is matched against the gallery and becomes a vote; the track's
verdict is the quality-weighted majority of its votes. Every row of the track (interpolated,
coasted, low-score rows included) carries the verdict.

Verdicts (``data["id_state"]``): ``match`` (``identity`` = the name, distance below the
threshold, no other enrolled person as close), ``uncertain`` (distance within ``margin``
above the threshold, two enrolled people about as close, or votes that disagree),
``unknown`` (nobody enrolled is close), ``pending`` (not identified yet: no good view so
far). ``data["id_distance"]`` is the distance to the closest enrolled person (NaN if none).
Policies treat ``uncertain`` and ``pending`` as "could be anyone": anonymized.

Images (``track_id == -1``) have no tracks: every face with a good view is embedded.
Embeddings stay in memory; only names, states and distances leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..faces import DETECTED, ID_CANDIDATE, ID_DISTANCE, ID_STATE, MATCH, PENDING, SOURCE, UNCERTAIN, UNKNOWN, Faces
from ..stages import FrameInfo, Item, StageBase
from .embedder import Embedder

__all__ = ["Matcher", "TrackIdentifier", "ID_STATE", "ID_DISTANCE", "MATCH", "UNCERTAIN", "UNKNOWN", "PENDING"]


class Matcher:
    """Nearest enrolled person for each embedding, with the uncertainty band."""

    def __init__(self, names: list[str], vectors: np.ndarray, threshold: float, margin: float, ambiguity: float = 0.05):
        self.people = sorted(set(names))
        self.threshold, self.margin, self.ambiguity = threshold, margin, ambiguity
        self._owner = np.array([self.people.index(n) for n in names], np.int64)
        self._vecs = np.asarray(vectors, np.float32).reshape(len(names), -1) if names else np.zeros((0, 0), np.float32)

    def match(self, vecs: np.ndarray) -> list[tuple[str, str | None, float]]:
        """Per vector ``(state, name, distance)``; ``name`` is the closest enrolled person."""
        out = []
        if not self.people:
            return [(UNKNOWN, None, float("nan")) for _ in vecs]
        d = np.linalg.norm(vecs[:, None, :] - self._vecs[None, :, :], axis=2)  # (k, stored)
        per = np.full((len(vecs), len(self.people)), np.inf, np.float32)
        for j in range(len(self.people)):
            per[:, j] = d[:, self._owner == j].min(axis=1)
        for row in per:
            order = np.argsort(row)
            best, dist = self.people[order[0]], float(row[order[0]])
            second = float(row[order[1]]) if len(order) > 1 else np.inf
            if dist < self.threshold and second - dist >= self.ambiguity:
                out.append((MATCH, best, dist))
            elif dist < self.threshold + self.margin:
                out.append((UNCERTAIN, best, dist))
            else:
                out.append((UNKNOWN, best, dist))
        return out


@dataclass
class _Vote:
    state: str
    name: str | None
    distance: float
    weight: float


@dataclass
class _Track:
    votes: list[_Vote] = field(default_factory=list)
    last_embed: int = -10**9
    best_quality: float = 0.0
    face_frames: int = 0
    last_seen: int = 0
    verdict: tuple[str, str | None, float] = (PENDING, None, float("nan"))
    last_box: np.ndarray | None = None

    def restart(self) -> None:
        """Forget the votes: the track may now follow someone else."""
        self.votes.clear()
        self.last_embed, self.best_quality, self.face_frames = -10**9, 0.0, 1
        self.verdict = (PENDING, None, float("nan"))


def _vote_key(v: _Vote) -> str | None:
    return v.name if v.state == MATCH else ("?" if v.state == UNCERTAIN else None)


def verdict(votes: list[_Vote]) -> tuple[str, str | None, float]:
    """A track's ``(state, name, distance)`` from its votes.

    Definite votes (a match, or unknown) elect the verdict by quality-weighted majority. An
    uncertain vote is half-weight evidence: for the winner when its closest person is the
    winning name, against it otherwise. The verdict is uncertain when there is no definite
    vote, when the doubt outweighs the winner, on a tie, or when the latest definite vote
    contradicts the majority (until the next vote settles it).
    """
    if not votes:
        return PENDING, None, float("nan")
    definite = [v for v in votes if v.state != UNCERTAIN]
    last = votes[-1]
    if not definite:
        return UNCERTAIN, last.name, float(last.distance)
    tally: dict[str | None, float] = {}
    for v in definite:
        tally[_vote_key(v)] = tally.get(_vote_key(v), 0.0) + v.weight
    ranked = sorted(tally.items(), key=lambda kv: -kv[1])
    win, support = ranked[0]
    tie = len(ranked) > 1 and ranked[1][1] >= 0.999 * support
    doubt = 0.0
    for v in votes:
        if v.state == UNCERTAIN:
            if win is not None and v.name == win:
                support += 0.5 * v.weight
            else:
                doubt += 0.5 * v.weight
    if tie or doubt > support or _vote_key(definite[-1]) != win:
        return UNCERTAIN, last.name, float(last.distance)
    dist = float(np.median([v.distance for v in definite if _vote_key(v) == win]))
    return (UNKNOWN, None, dist) if win is None else (MATCH, win, dist)


class TrackIdentifier(StageBase):
    """The identify stage (:class:`veil.stages.Stage`), see the module doc.

    Counters for the report (:attr:`stats`, since the input began): :attr:`embeddings`
    computed, :attr:`face_frames` seen.
    """

    name = "identify"

    def __init__(self, embedder: Embedder, matcher: Matcher | None, *, reverify_frames: int = 60, min_gap: int = 20,
                 min_face_px: float = 32.0, min_score: float = 0.4, max_yaw: float = 0.5, better: float = 1.3,
                 forget_frames: int = 900):
        self.embedder, self.matcher = embedder, matcher
        self.reverify_frames, self.min_gap = reverify_frames, min_gap
        self.min_face_px, self.min_score, self.max_yaw, self.better = min_face_px, min_score, max_yaw, better
        self.forget_frames = forget_frames
        self.embeddings = 0
        self.face_frames = 0
        self.reset()

    def begin_item(self, item: Item) -> None:
        """A new input: no tracks, counters from zero."""
        self.embeddings = self.face_frames = 0
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new video: track ids start again)."""
        self._tracks: dict[int, _Track] = {}
        self._frame = 0

    @property
    def stats(self) -> dict[str, float]:
        return {"embeddings": self.embeddings, "face_frames": self.face_frames,
                "embeddings_per_face_frame": round(self.embeddings / self.face_frames, 4) if self.face_frames else 0.0}

    # -- quality ---------------------------------------------------------------------
    def quality(self, faces: Faces, frame_hw: tuple[int, int] | None = None) -> np.ndarray:
        """0 for rows that cannot be embedded reliably, else a score (bigger = better view).

        With ``frame_hw``, a face cut by the frame's edge through the face itself (a
        landmark outside the picture) is not embedded either: the detector extrapolates
        those landmarks, and the chip aligned on them lands far from the person's enrolled
        vectors (a person entering the picture: 0.66, against 0.53-0.55 once in view, in
        ``veil eval identity``). That first vote was uncertain, so the track stayed
        anonymized until re-verified; under ``--only`` a vote that far could even read as
        someone else. Such a face stays "not identified yet" (anonymized) until in view."""
        n = len(faces)
        source = faces.data.get(SOURCE)
        lm = faces.landmarks
        ok = ~np.isnan(lm).reshape(n, -1).any(axis=1)
        if source is not None:
            ok &= np.asarray(source == DETECTED, bool)
        side = faces.wh.min(axis=1) if n else np.zeros(0)
        ok &= (side >= self.min_face_px) & (faces.scores >= self.min_score)
        yaw = np.nan_to_num(yaws(lm), nan=1.0)
        ok &= yaw <= self.max_yaw
        if frame_hw is not None and n:
            h, w = frame_hw
            with np.errstate(invalid="ignore"):
                inside = (lm[..., 0] >= 0) & (lm[..., 0] < w) & (lm[..., 1] >= 0) & (lm[..., 1] < h)
            ok &= inside.all(axis=1)
        q = np.minimum(side, 160.0) / 160.0 * faces.scores * (1.0 - yaw)
        return np.where(ok, q, 0.0).astype(np.float32)

    # -- the stage -------------------------------------------------------------------
    def annotate(self, frame: np.ndarray, faces: Faces, info: FrameInfo | None = None) -> Faces:
        n = len(faces)
        self._frame += 1
        self.face_frames += n
        if n == 0:
            return faces
        q = self.quality(faces, frame.shape[:2])
        todo: list[int] = []
        for i in range(n):
            tid = int(faces.track_id[i])
            if tid < 0:
                if q[i] > 0:
                    todo.append(i)
                continue
            t = self._tracks.setdefault(tid, _Track())
            t.face_frames += 1
            t.last_seen = self._frame
            box = faces.xyxy[i]
            if t.last_box is not None and _jump(t.last_box, box):
                t.restart()  # an identity switch (scene cut the tracker missed, occlusion): re-identify
            t.last_box = box
            if q[i] > 0 and self._due(t, float(q[i])):
                todo.append(i)
        results: dict[int, tuple[str, str | None, float]] = {}
        if todo:
            assert self.matcher is not None, "without a matcher a TrackIdentifier is only a quality gate (enrolment)"
            vecs = self.embedder.embed_faces(frame, faces[np.array(todo)])
            self.embeddings += len(todo)
            for i, (state, name, dist) in zip(todo, self.matcher.match(vecs)):
                tid = int(faces.track_id[i])
                if tid < 0:
                    results[i] = (state, name, dist)
                    continue
                t = self._tracks[tid]
                t.votes.append(_Vote(state, name, dist, float(q[i])))
                t.last_embed = self._frame
                t.best_quality = max(t.best_quality, float(q[i]))
                t.verdict = verdict(t.votes)
        states = np.empty(n, object)
        names = np.empty(n, object)
        dists = np.full(n, np.nan, np.float32)
        for i in range(n):
            tid = int(faces.track_id[i])
            if tid < 0:
                state, name, dist = results.get(i, (PENDING, None, float("nan")))
            else:
                state, name, dist = self._tracks[tid].verdict
            states[i] = state
            names[i] = name if state == MATCH else None
            dists[i] = dist
        if self._frame % 300 == 0:
            self._forget()
        return faces.with_columns(identity=names, data={**faces.data, ID_STATE: states, ID_DISTANCE: dists,
                                                       ID_CANDIDATE: _candidates(faces, results, self._tracks)})

    def _due(self, t: _Track, q: float) -> bool:
        if not t.votes:
            return True
        since = self._frame - t.last_embed
        if len(t.votes) - 1 >= t.face_frames / self.min_gap:
            return False  # over the per-track budget
        if since >= self.reverify_frames:
            return True
        if t.verdict[0] == UNCERTAIN:  # resolve doubt quickly (the budget above still holds)
            return since >= max(self.reverify_frames // 12, 1)
        return since >= max(self.reverify_frames // 4, 1) and q >= self.better * t.best_quality

    def _forget(self) -> None:
        old = [k for k, t in self._tracks.items() if self._frame - t.last_seen > self.forget_frames]
        for k in old:
            del self._tracks[k]


def yaws(landmarks: np.ndarray) -> np.ndarray:
    """How far each face is turned, from its 5 landmarks ``(n, 5, 2)``: the nose's offset
    from the eyes' midpoint over the eye distance (0 = frontal, about 0.5 = a three-quarter
    view); NaN without landmarks."""
    lm = np.asarray(landmarks, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        eye_mid = (lm[:, 0, 0] + lm[:, 1, 0]) / 2
        eye_d = np.abs(lm[:, 1, 0] - lm[:, 0, 0])
        return np.abs(lm[:, 2, 0] - eye_mid) / np.maximum(eye_d, 1e-6)


def _jump(prev: np.ndarray, box: np.ndarray, scale: float = 1.5) -> bool:
    """A box that changed size by more than ``scale`` or moved more than its size since the
    previous frame: probably not the same face any more."""
    s0 = float(np.sqrt(max((prev[2] - prev[0]) * (prev[3] - prev[1]), 1e-6)))
    s1 = float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)))
    move = float(np.linalg.norm((prev[:2] + prev[2:]) / 2 - (box[:2] + box[2:]) / 2))
    return not (1 / scale <= s1 / s0 <= scale) or move > max(s0, s1)


def _candidates(faces: Faces, results: dict, tracks: dict[int, _Track]) -> np.ndarray:
    """The closest enrolled name per row (for 'uncertain' reasons), or None."""
    out = np.empty(len(faces), object)
    for i in range(len(faces)):
        tid = int(faces.track_id[i])
        if tid < 0:
            out[i] = results.get(i, (PENDING, None, 0))[1]
        else:
            out[i] = tracks[tid].verdict[1]
    return out
