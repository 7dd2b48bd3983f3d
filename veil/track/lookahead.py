"""Bidirectional gap filling for files: a bounded look-ahead buffer of frames.

The tracker only knows the past. Holding the last frames back before rendering lets veil
use the future too:

* **interpolation** — when a track is detected again after some frames without a
  detection (a miss, or frames skipped by detect-every-k), the frames in between get a box
  interpolated between the two detections, replacing the forward-only prediction;
* **linking** — a fast face can jump too far for the tracker, which then starts a new
  track: a new track that appears close to where another one was lost a few frames earlier
  is joined to it by interpolation;
* **backward extension** — a face usually enters the frame, or turns towards the camera,
  a few frames before the detector fires: a new track's first box is copied back onto the
  ``pre_frames`` frames before it (growing a little with distance).

Both stay within one scene (``segment``): nothing is carried across a scene cut. The buffer
holds at most ``size`` frames and at most ``max_bytes`` of pixels, so memory stays bounded
whatever the resolution; a file is processed with a delay of that many frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..faces import ANONYMIZE, DETECTED, EXTENDED, INTERPOLATED, OBSERVED, SOURCE, Faces

__all__ = ["Buffered", "Lookahead"]


@dataclass
class Buffered:
    """A frame waiting in the buffer, with its faces so far.

    The boxes the look-ahead gives a track on this frame wait in ``edits`` (track id ->
    observation, source, score; the latest wins) and go into ``faces`` once, when the frame
    leaves the buffer: a frame is rebuilt once, not once per edit.
    """

    index: int
    frame: np.ndarray
    faces: Faces
    segment: int = 0
    time_s: float | None = None
    edits: dict[int, tuple[np.ndarray, str, float]] = field(default_factory=dict)

    def edit(self, track_id: int, obs: np.ndarray, source: str, score: float) -> None:
        """Give the track ``obs`` on this frame, unless the track was observed here."""
        mine = self.faces.track_id == track_id
        if mine.any():
            src = self.faces.data.get(SOURCE)
            if src is None or np.isin(src[mine], OBSERVED).any():
                return
        self.edits.pop(track_id, None)  # the latest edit goes last, as one rebuilt row would
        self.edits[track_id] = (obs, source, score)

    def settle(self) -> "Buffered":
        """Apply the pending edits to ``faces`` (once)."""
        if self.edits:
            self.faces = _with_boxes(self.faces, self.edits)
            self.edits = {}
        return self


def _observed(faces: Faces) -> dict[int, np.ndarray]:
    """Track id -> observation, for rows that are real detections.

    An observation is the box followed by the 5 landmarks, 14 numbers, so that one linear
    interpolation moves both (the renderer needs landmarks to cover a turned head).
    """
    src = faces.data.get(SOURCE)
    if src is None:
        return {}
    return {int(t): np.concatenate([faces.xyxy[i], faces.landmarks[i].ravel()])
            for i, t in enumerate(faces.track_id) if t >= 0 and src[i] in OBSERVED}


def _with_boxes(faces: Faces, edits: dict[int, tuple[np.ndarray, str, float]]) -> Faces:
    """Replace the rows of each edited track (none of them observed) by one row with its
    observation, appended in the order of the edits; the other rows are kept."""
    n, k = len(faces), len(edits)
    src = faces.data.get(SOURCE, np.full(n, DETECTED, object))
    rest = ~np.isin(faces.track_id, list(edits))
    obs = np.array([e[0] for e in edits.values()], np.float32).reshape(k, 14)

    def rows(col: np.ndarray, new) -> np.ndarray:
        return np.concatenate([col[rest], np.asarray(new, col.dtype)])

    return Faces(xyxy=rows(faces.xyxy, obs[:, :4]), scores=rows(faces.scores, [e[2] for e in edits.values()]),
                 landmarks=rows(faces.landmarks, obs[:, 4:].reshape(k, 5, 2)), track_id=rows(faces.track_id, list(edits)),
                 identity=rows(faces.identity, [None] * k), distance_m=rows(faces.distance_m, np.full(k, np.nan)),
                 decision=rows(faces.decision, [ANONYMIZE] * k), reason=rows(faces.reason, ["detected face"] * k),
                 data={SOURCE: rows(src.astype(object), [e[1] for e in edits.values()])})


def _grow(obs: np.ndarray, factor: float) -> np.ndarray:
    """The observation with its box grown about its centre (landmarks unchanged)."""
    c = (obs[:2] + obs[2:4]) / 2
    half = (obs[2:4] - obs[:2]) / 2 * factor
    return np.concatenate([c - half, c + half, obs[4:]]).astype(np.float32)


class Lookahead:
    """Holds frames back; see the module docstring.

    Args:
        size: frames held back (0 disables look-ahead: frames leave at once).
        pre_frames: how many frames before its first detection a new track is extended.
        max_bytes: memory bound for the held frames.
        margin: growth of interpolated boxes (they are estimates).
    """

    def __init__(self, size: int, pre_frames: int = 5, max_bytes: int = 512 << 20, margin: float = 1.1):
        self.size = max(0, size)
        self.pre_frames = pre_frames
        self.max_bytes = max_bytes
        self.margin = margin
        self.buf: deque[Buffered] = deque()
        self.seen: set[int] = set()  # tracks already observed (no backward extension for them)
        self.continued: set[int] = set()  # lost tracks already linked to a successor

    def push(self, item: Buffered) -> list[Buffered]:
        """Add a frame; return the frames that leave the buffer, oldest first."""
        for tid, box in _observed(item.faces).items():
            score = float(item.faces.scores[item.faces.track_id == tid][0])
            if tid in self.seen:
                self._interpolate(item, tid, box, score)
            else:
                self.seen.add(tid)
                if not self._link(item, tid, box, score):
                    self._extend_back(item, tid, box, score)
        self.buf.append(item)
        out = []
        while self.buf and (len(self.buf) > self.size or self._bytes() > self.max_bytes):
            out.append(self.buf.popleft().settle())
        return out

    def flush(self) -> list[Buffered]:
        out = [b.settle() for b in self.buf]
        self.buf.clear()
        return out

    def _bytes(self) -> int:
        return sum(b.frame.nbytes for b in self.buf)

    def _interpolate(self, item: Buffered, tid: int, box: np.ndarray, score: float) -> None:
        # the latest buffered frame where this track was observed, in the same scene
        last = None
        for k in range(len(self.buf) - 1, -1, -1):
            b = self.buf[k]
            if b.segment != item.segment:
                return
            if tid in _observed(b.faces):
                last = k
                break
        if last is None:
            return
        self._fill(last, _observed(self.buf[last].faces)[tid], item, tid, box, score)

    def _fill(self, last: int, start: np.ndarray, item: Buffered, tid: int, box: np.ndarray, score: float) -> None:
        """Interpolate ``tid`` on the buffered frames after position ``last``."""
        steps = item.index - self.buf[last].index
        for k in range(last + 1, len(self.buf)):
            b = self.buf[k]
            w = (b.index - self.buf[last].index) / steps
            # the further from both observations, the less certain the position
            away = min(b.index - self.buf[last].index, item.index - b.index)
            interp = _grow((1 - w) * start + w * box, min(self.margin + 0.04 * (away - 1), 1.5))
            b.edit(tid, interp, INTERPOLATED, score)

    def _link(self, item: Buffered, tid: int, box: np.ndarray, score: float) -> bool:
        """A new track that continues one lost a few frames ago (a fast face the tracker
        could not associate): interpolate from the lost track's last box to the new one.

        The lost track is the nearest one, of similar size, whose last detection in this
        scene is close enough for the frames elapsed; returns False when there is none.
        """
        present = set(_observed(item.faces))
        size = float(max(box[2] - box[0], box[3] - box[1]))
        centre = (box[:2] + box[2:4]) / 2
        best: tuple[float, int, np.ndarray, int] | None = None
        done: set[int] = present | self.continued
        for k in range(len(self.buf) - 1, -1, -1):
            b = self.buf[k]
            if b.segment != item.segment:
                break
            for other, prev in _observed(b.faces).items():
                if other in done:
                    continue
                done.add(other)  # only its latest observation counts
                gap = item.index - b.index
                psize = float(max(prev[2] - prev[0], prev[3] - prev[1]))
                dist = float(np.linalg.norm((prev[:2] + prev[2:4]) / 2 - centre))
                reach = psize * (1.0 + 0.5 * gap)  # a face rarely moves more than half its size a frame
                if not (0.6 < size / max(psize, 1e-6) < 1.67) or dist > reach:
                    continue
                if best is None or dist / reach < best[0]:
                    best = (dist / reach, k, prev, other)
        if best is None:
            return False
        self.continued.add(best[3])
        self._fill(best[1], best[2], item, tid, box, score)
        return True

    def _extend_back(self, item: Buffered, tid: int, box: np.ndarray, score: float) -> None:
        for dist, k in enumerate(range(len(self.buf) - 1, max(-1, len(self.buf) - 1 - self.pre_frames), -1), start=1):
            b = self.buf[k]
            if b.segment != item.segment:
                return
            b.edit(tid, _grow(box, 1 + 0.05 * dist), EXTENDED, score)
