"""Rules by distance to the camera: anonymize only far faces, or keep the nearest visible.

Both read the ``distance_m`` / ``data["distance_key"]`` columns the distance annotator
(:mod:`veil.depth.annotator`) writes, and set only ``decision`` and ``reason``. A face whose
distance is unknown is anonymized. Both keep per-track state for hysteresis (video), so a
face near the threshold does not flicker; :meth:`reset` forgets it (a new video).
"""

from __future__ import annotations

import numpy as np

from ..faces import ANONYMIZE, DISTANCE_KEY, DISTANCE_SOURCE, KEEP, Faces
from .base import Rule

__all__ = ["OnlyBeyond", "KeepNearest"]


def _source(faces: Faces, i: int) -> str:
    src = faces.data.get(DISTANCE_SOURCE)
    return str(src[i]) if src is not None else "unknown: no distance estimator"


class OnlyBeyond(Rule):
    """Anonymize faces farther than ``beyond_m``; nearer faces stay visible.

    Hysteresis, privacy-leaning: a track becomes visible only once its distance is below
    ``beyond_m * (1 - margin)``, and is anonymized again as soon as it exceeds ``beyond_m``.
    So a face measured beyond the threshold is never shown, and one hovering just below it
    stays anonymized rather than flickering.
    """

    name = "only-beyond"

    def __init__(self, beyond_m: float, margin: float = 0.1):
        self.beyond_m, self.margin = float(beyond_m), float(margin)
        self.reset()

    def reset(self) -> None:
        self._visible: set[int] = set()

    def judge(self, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
        n = len(faces)
        decision = np.full(n, ANONYMIZE, object)
        reason = np.empty(n, object)
        for i in range(n):
            d, tid, src = float(faces.distance_m[i]), int(faces.track_id[i]), _source(faces, i)
            if not np.isfinite(d):
                reason[i] = f"distance unknown ({src.removeprefix('unknown: ')}): anonymized"
                self._visible.discard(tid)
                continue
            limit = self.beyond_m if tid in self._visible else self.beyond_m * (1 - self.margin)
            if d < limit:
                decision[i] = KEEP
                reason[i] = f"{d:.2f} m ({src}) nearer than {self.beyond_m:g} m: kept"
                if tid >= 0:
                    self._visible.add(tid)
            else:
                self._visible.discard(tid)
                why = "beyond" if d > self.beyond_m else "within the hysteresis margin of"
                reason[i] = f"{d:.2f} m ({src}) {why} {self.beyond_m:g} m: anonymized"
        return decision, reason


class KeepNearest(Rule):
    """Keep the ``k`` nearest faces of each frame visible; anonymize the others.

    Needs no calibration: faces are ranked by ``data["distance_key"]`` (metres when known,
    otherwise the landmark scale's inverse, which orders faces of one frame the same way).
    Faces of unknown distance are never kept. Hysteresis: a track kept in the previous frame
    counts ``margin`` nearer, so a challenger must be clearly nearer to take its place.
    """

    name = "keep-nearest"

    def __init__(self, k: int, margin: float = 0.1):
        self.k, self.margin = int(k), float(margin)
        self.reset()

    def reset(self) -> None:
        self._kept: set[int] = set()

    def judge(self, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
        n = len(faces)
        key = faces.data.get(DISTANCE_KEY)
        key = np.asarray(key, np.float64) if key is not None else np.asarray(faces.distance_m, np.float64)
        tids = np.asarray(faces.track_id)
        eff = key * np.where(np.isin(tids, list(self._kept)) & (tids >= 0), 1 - self.margin, 1.0)
        known = np.isfinite(eff)
        order = [i for i in np.argsort(np.where(known, eff, np.inf), kind="stable") if known[i]]
        kept = set(order[: self.k])
        decision = np.full(n, ANONYMIZE, object)
        reason = np.empty(n, object)
        for rank, i in enumerate(order):
            src, d = _source(faces, i), float(faces.distance_m[i])
            where = f"{d:.2f} m ({src})" if np.isfinite(d) else f"relative distance ({src})"
            if i in kept:
                decision[i] = KEEP
                reason[i] = f"{where}, nearest #{rank + 1} of {len(order)}: kept (keep-nearest {self.k})"
            else:
                reason[i] = f"{where}, #{rank + 1} by distance: anonymized (keep-nearest {self.k})"
        for i in np.flatnonzero(~known):
            reason[i] = f"distance unknown ({_source(faces, int(i)).removeprefix('unknown: ')}): anonymized"
        self._kept = {int(tids[i]) for i in kept if tids[i] >= 0}
        return decision, reason
