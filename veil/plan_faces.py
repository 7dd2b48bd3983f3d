"""Between :class:`~veil.faces.Faces` (what stages pass) and the plan's tracks (what people edit).

:class:`PlanCollector` turns the decided faces of each frame into plan tracks as analysis runs;
:func:`faces_of` turns a frame's plan boxes back into Faces for the renderer. Both keep every
number the renderer reads (box, score, landmarks) exact, so rendering a plan gives the
frames the one-pass run gives.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np

from .faces import ANONYMIZE, DETECTED, KEEP, OBSERVED, SOURCE, Faces
from .plan import FrameBox, Track, f32

__all__ = ["PlanCollector", "faces_of"]


def faces_of(boxes: list[FrameBox]) -> Faces:
    """The faces to anonymize on one frame, from its plan boxes."""
    if not boxes:
        return Faces.empty()
    lm = np.full((len(boxes), 5, 2), np.nan, np.float32)
    for i, b in enumerate(boxes):
        if b.landmarks is not None:
            lm[i] = b.landmarks
    return Faces(xyxy=np.array([b.box for b in boxes], np.float32), scores=np.array([b.score for b in boxes], np.float32),
                 landmarks=lm, decision=np.full(len(boxes), ANONYMIZE, object))


class PlanCollector:
    """Collects decided faces frame by frame into plan tracks.

    A tracker track keeps one plan track while its decision stays the same; when the policy
    changes its mind (an identity confirmed after a few frames) a new plan track starts, with
    the same ``group``. Untracked faces (images, tracking off) are one-frame tracks.
    """

    def __init__(self) -> None:
        self.tracks: list[Track] = []
        self._open: dict[int, Track] = {}  # tracker id -> its current plan track
        self._reasons: dict[int, Counter] = {}

    def add(self, index: int, faces: Faces) -> None:
        src = faces.data.get(SOURCE)
        for r in range(len(faces)):
            tid = int(faces.track_id[r])
            decision: Literal["anonymize", "keep"] = "keep" if faces.decision[r] == KEEP else "anonymize"
            source = str(src[r]) if src is not None else DETECTED
            entry = _entry(faces, r, index, source)
            t = self._open.get(tid) if tid >= 0 else None
            if t is None or t.decision != decision or t.frames[-1].index == index:
                t = Track.model_construct(id=len(self.tracks), decision=decision, reason="", source="detected",
                                          frames=[], keyframes=[], group=tid if tid >= 0 else None,
                                          identity=None, distance_m=None)
                self.tracks.append(t)
                self._reasons[t.id] = Counter()
                if tid >= 0:
                    self._open[tid] = t
            t.frames.append(entry)
            # the reason a person reads: the policy's words for an observed face
            weight = 2 if source in OBSERVED else 1
            self._reasons[t.id][str(faces.reason[r])] += weight

    def finished(self) -> list[Track]:
        """The tracks, with their reason and the annotations that travel with them."""
        out = []
        for t in self.tracks:
            ids = Counter(f.identity for f in t.frames if f.identity is not None)
            dists = [f.distance_m for f in t.frames if f.distance_m is not None]
            reason = self._reasons[t.id].most_common(1)[0][0]
            out.append(Track(id=t.id, decision=t.decision, reason=reason, source="detected", frames=t.frames,
                             group=t.group, identity=ids.most_common(1)[0][0] if ids else None,
                             distance_m=round(float(np.median(dists)), 2) if dists else None))
        return out


def _entry(faces: Faces, r: int, index: int, source: str) -> FrameBox:
    lm = faces.landmarks[r]
    dist = float(faces.distance_m[r])
    ident = faces.identity[r]
    x1, y1, x2, y2 = (f32(v) for v in faces.xyxy[r])
    return FrameBox.model_construct(
        index=index, box=(x1, y1, x2, y2), score=f32(faces.scores[r]),
        interpolated=source not in OBSERVED, source=None if source == DETECTED else source,
        landmarks=None if np.isnan(lm).any() else [(f32(x), f32(y)) for x, y in lm],
        identity=None if ident is None else str(ident), distance_m=None if np.isnan(dist) else round(dist, 2))
