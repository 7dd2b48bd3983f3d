"""Face tracking for video: ids across frames, smoothed masks, coasting through misses.

A detector that works frame by frame leaks: a face missed for one frame of a 30 fps video is
visible to anyone who pauses it. The tracker closes those holes going forward in time (the
look-ahead buffer in :mod:`veil.track.lookahead` closes them backwards).

Association is ByteTrack-style: detections at or above the operating threshold are matched
to the tracks' predicted boxes first; then detections between ``low_threshold`` and the
threshold may continue an existing track (a face that blurs or turns keeps its mask), but
never start one. Matching is greedy by distance-IoU (:func:`box_diou`), which, unlike IoU,
still links a fast face to its track when consecutive boxes no longer overlap. Motion is a constant-velocity alpha-beta filter
on box centre and size, which is all a face needs over the short gaps we bridge.

Privacy rules, unlike a general-purpose tracker:

* every detection at or above the threshold is returned, matched or not (nothing is
  dropped while a track "initializes");
* the box rendered for a matched detection is the union of the smoothed box and the raw
  detection, so smoothing never uncovers part of a face that moves fast;
* a track's mask grows with its detections at once but shrinks by at most ``shrink`` (2 %)
  per frame: a face's size changes slowly, its detections' do not (a blurred or turning
  face gets a smaller box). On the motion-blurred OTB clip this took leaked face-frames
  from 5 to 2 (every 3rd frame) and 5 to 3 (every frame) for 1-7 % more masked area
  (docs/benchmarks.md §4);
* a lost track keeps a mask on its predicted position for ``coast_frames`` frames, growing
  a little each frame as its position gets less certain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import box_iou
from ..faces import ANONYMIZE, COASTED, DETECTED, LOW, SOURCE, Faces

__all__ = ["Tracker", "box_iou", "box_diou"]

_NO_FACES = Faces.empty()  # a frame that was not detected (Faces never change: one is enough)



def box_diou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance-IoU (IoU minus squared centre distance over the enclosing box's squared
    diagonal): unlike IoU it still ranks boxes that do not overlap, which fast faces and
    detect-every-k leave behind. Range [-1, 1]."""
    iou = box_iou(a, b)
    if iou.size == 0:
        return iou
    ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    d2 = ((ca[:, None, :] - cb[None, :, :]) ** 2).sum(axis=2)
    tl = np.minimum(a[:, None, :2], b[None, :, :2])
    br = np.maximum(a[:, None, 2:], b[None, :, 2:])
    diag2 = ((br - tl) ** 2).sum(axis=2)
    return iou - d2 / np.maximum(diag2, 1e-9)


def _greedy_match(sim: np.ndarray, min_sim: float) -> list[tuple[int, int]]:
    """Pairs (row, col), best similarity first, each row and column used once."""
    pairs: list[tuple[int, int]] = []
    if sim.size == 0:
        return pairs
    sim = sim.copy()
    while True:
        i, j = np.unravel_index(np.argmax(sim), sim.shape)
        if sim[i, j] < min_sim:
            return pairs
        pairs.append((int(i), int(j)))
        sim[i, :] = -np.inf
        sim[:, j] = -np.inf


def _to_cxcywh(b: np.ndarray) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]], np.float64)


def _to_xyxy(s: np.ndarray) -> np.ndarray:
    cx, cy, w, h = s
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


@dataclass
class _Track:
    id: int
    state: np.ndarray  # cx, cy, w, h
    velocity: np.ndarray  # per frame
    score: float
    landmarks: np.ndarray
    size: np.ndarray  # w, h the mask keeps: follows growth at once, shrinks slowly
    hits: int = 1
    missed: int = 0  # consecutive frames without a detection

    def predict(self, frames: int = 1) -> np.ndarray:
        s = self.state + self.velocity * frames
        s[2:] = np.maximum(s[2:], 2.0)
        return s


class Tracker:
    """Assigns track ids and adds coasted boxes; one instance per video.

    Args:
        threshold: operating score threshold (detections at or above it are always kept).
        low_threshold: lowest score that may continue an existing track.
        coast_frames: how many frames a lost track keeps its mask.
        min_match: association threshold on distance-IoU between a predicted box and a
            detection (-0.25 allows a jump of about one face width).
        alpha, beta: position and velocity gains of the alpha-beta filter.
        growth: relative growth of a coasted box per frame (position uncertainty).
        shrink: how fast a track's mask may shrink, relative per frame (it grows at once).
    """

    def __init__(self, threshold: float, low_threshold: float = 0.1, coast_frames: int = 15,
                 min_match: float = -0.25, alpha: float = 0.6, beta: float = 0.2, growth: float = 0.03,
                 shrink: float = 0.02):
        self.threshold = threshold
        self.low_threshold = min(low_threshold, threshold)
        self.coast_frames = coast_frames
        self.min_match = min_match
        self.alpha, self.beta, self.growth, self.shrink = alpha, beta, growth, shrink
        self.tracks: list[_Track] = []
        self._next_id = 0

    def lost_established(self, min_hits: int = 3) -> bool:
        """True if a track seen at least ``min_hits`` times is currently missed (coasting);
        one-off false positives do not count."""
        return any(t.missed > 0 and t.hits >= min_hits for t in self.tracks)

    def predicted(self, frames: int = 1) -> np.ndarray:
        """Where each live track is expected ``frames`` frames from now (``(n, 4)`` xyxy).

        Detect-every-k mode looks for the faces there, cheaply, on the frames in between.
        """
        return np.array([_to_xyxy(t.predict(t.missed + frames)) for t in self.tracks], np.float32).reshape(-1, 4)

    def reset(self) -> None:
        """End all tracks (scene cut). Ids keep increasing, so they stay unique per video."""
        self.tracks = []

    def update(self, faces: Faces | None, frames: int = 1) -> Faces:
        """Advance by ``frames`` and take this frame's detections (``None``: not detected).

        Returns this frame's faces: every detection at or above the threshold, low-score
        detections that continue a track, and coasted boxes of lost tracks, each with its
        ``track_id`` and a ``source`` data column.
        """
        for t in self.tracks:
            t.missed += frames
        preds = np.array([_to_xyxy(t.predict(t.missed)) for t in self.tracks], np.float32).reshape(-1, 4)
        if faces is None:
            return self._emit(_NO_FACES, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object))

        strong = np.flatnonzero(faces.scores >= self.threshold)
        weak = np.flatnonzero((faces.scores >= self.low_threshold) & (faces.scores < self.threshold))
        track_of = np.full(len(faces), -1, np.int64)
        free = list(range(len(self.tracks)))
        for group in (strong, weak):
            if not len(group) or not free:
                continue
            pairs = _greedy_match(box_diou(preds[free], faces.xyxy[group]), self.min_match)
            taken = set()
            for pi, di in pairs:
                ti, d = free[pi], group[di]
                self._correct(self.tracks[ti], faces, d)
                track_of[d] = self.tracks[ti].id
                taken.add(ti)
            free = [f for f in free if f not in taken]
        for d in strong:
            if track_of[d] < 0:
                track_of[d] = self._start(faces, int(d))
        keep = np.flatnonzero((faces.scores >= self.threshold) | (track_of >= 0))
        source = np.where(faces.scores[keep] >= self.threshold, DETECTED, LOW).astype(object)
        return self._emit(faces, keep, track_of[keep], source)

    # -- internals --------------------------------------------------------------------
    def _start(self, faces: Faces, d: int) -> int:
        tid = self._next_id
        self._next_id += 1
        state = _to_cxcywh(faces.xyxy[d])
        self.tracks.append(_Track(tid, state, np.zeros(4), float(faces.scores[d]), faces.landmarks[d].copy(),
                                  state[2:].copy()))
        return tid

    def _correct(self, t: _Track, faces: Faces, d: int) -> None:
        pred = t.predict(t.missed)
        seen = _to_cxcywh(faces.xyxy[d])
        resid = seen - pred
        t.state = pred + self.alpha * resid
        t.velocity = t.velocity + self.beta * resid / max(t.missed, 1)
        t.score, t.landmarks = float(faces.scores[d]), faces.landmarks[d].copy()
        t.size = np.maximum(seen[2:], t.size * (1 - self.shrink) ** max(t.missed, 1))
        t.hits += 1
        t.missed = 0

    def _emit(self, faces: Faces, keep: np.ndarray, ids: np.ndarray, source: np.ndarray) -> Faces:
        """The detections ``faces[keep]`` (tracks ``ids``) rendered as union(smoothed, raw), and
        lost tracks coasted: one Faces, built once."""
        by_id = {t.id: t for t in self.tracks}
        xyxy = faces.xyxy[keep]
        for row, tid in enumerate(ids):
            t = by_id.get(int(tid))
            if t is not None and t.hits > 1:
                s = _to_xyxy(np.concatenate([t.state[:2], np.maximum(t.state[2:], t.size)]))
                xyxy[row, :2] = np.minimum(xyxy[row, :2], s[:2])
                xyxy[row, 2:] = np.maximum(xyxy[row, 2:], s[2:])
        # advance unmatched tracks; end those lost for too long
        coasted, alive = [], []
        for t in self.tracks:
            if t.missed == 0:
                alive.append(t)
                continue
            if t.missed > self.coast_frames:
                continue
            alive.append(t)
            s = t.predict(t.missed)
            s[2:] = np.maximum(s[2:], t.size) * (1 + self.growth * t.missed)
            coasted.append((t, _to_xyxy(s)))
        self.tracks = alive
        if not coasted:
            return Faces(xyxy=xyxy, scores=faces.scores[keep], landmarks=faces.landmarks[keep], track_id=ids,
                         identity=faces.identity[keep], distance_m=faces.distance_m[keep], decision=faces.decision[keep],
                         reason=faces.reason[keep], data={**{k: v[keep] for k, v in faces.data.items()}, SOURCE: source})
        k = len(coasted)

        def rows(found: np.ndarray, new) -> np.ndarray:
            return np.concatenate([found, np.asarray(new, found.dtype)])

        return Faces(  # coasted rows: no landmarks, the other columns at their defaults
            xyxy=rows(xyxy, [b for _, b in coasted]).reshape(-1, 4),
            scores=rows(faces.scores[keep], [t.score for t, _ in coasted]),
            landmarks=rows(faces.landmarks[keep], np.full((k, 5, 2), np.nan)),
            track_id=rows(ids, [t.id for t, _ in coasted]),
            identity=rows(faces.identity[keep], [None] * k),
            distance_m=rows(faces.distance_m[keep], np.full(k, np.nan)),
            decision=rows(faces.decision[keep], [ANONYMIZE] * k),
            reason=rows(faces.reason[keep], ["detected face"] * k),
            data={SOURCE: rows(source.astype(object), [COASTED] * k)},  # only the column both kinds of row have
        )
