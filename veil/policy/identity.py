"""Policies by identity: spare listed people (``--spare``, ``--spare-enrolled``) or anonymize
only listed people (``--only``).

They read the identify stage's columns (:mod:`veil.identify.track_identity`): ``identity``,
``data["id_state"]`` (match / unknown / uncertain / pending) and ``data["id_distance"]``.
Privacy wins when in doubt: an uncertain or not-yet-identified face is anonymized in both
modes, and so is any face when the identify stage did not run.
"""

from __future__ import annotations

import numpy as np

from ..faces import ANONYMIZE, KEEP, Faces

__all__ = ["SpareIdentities", "OnlyIdentities"]

_STATE, _DIST, _CAND = "id_state", "id_distance", "id_candidate"


def _describe(state: str, name, cand, dist: float) -> str:
    d = "" if not np.isfinite(dist) else f" (distance {dist:.2f})"
    if state == "match":
        return f"{name}{d}"
    if state == "unknown":
        return f"unknown{d}"
    if state == "uncertain":
        return f"uncertain: closest enrolled {cand}{d}" if cand else f"uncertain{d}"
    return "not identified yet (no good view of the face so far)"


class _ByIdentity:
    name = "identity"

    def __init__(self, names: list[str] | None):
        self.names = None if names is None else set(names)

    def _rows(self, faces: Faces):
        n = len(faces)
        states = faces.data.get(_STATE, np.full(n, "pending", object))
        dists = faces.data.get(_DIST, np.full(n, np.nan, np.float32))
        cands = faces.data.get(_CAND, np.full(n, None, object))
        for i in range(n):
            yield str(states[i]), faces.identity[i], cands[i], float(dists[i])

    def _listed(self, name) -> bool:
        return name is not None and (self.names is None or name in self.names)


class SpareIdentities(_ByIdentity):
    """Keep faces confidently identified as one of ``names`` (None = anyone enrolled)."""

    name = "spare"

    def decide(self, faces: Faces) -> Faces:
        decision, reason = [], []
        for state, name, cand, dist in self._rows(faces):
            text = _describe(state, name, cand, dist)
            if state == "match" and self._listed(name):
                decision.append(KEEP)
                reason.append(f"spared: {text}")
            elif state == "match":
                decision.append(ANONYMIZE)
                reason.append(f"identified as {text}, not spared")
            else:
                decision.append(ANONYMIZE)
                reason.append(text)
        return faces.with_columns(decision=np.array(decision, object), reason=np.array(reason, object))


class OnlyIdentities(_ByIdentity):
    """Anonymize faces identified as one of ``names``, and every uncertain face."""

    name = "only"

    def decide(self, faces: Faces) -> Faces:
        decision, reason = [], []
        for state, name, cand, dist in self._rows(faces):
            text = _describe(state, name, cand, dist)
            if state == "match" and self._listed(name):
                decision.append(ANONYMIZE)
                reason.append(f"listed for anonymization: {text}")
            elif state in ("match", "unknown"):
                decision.append(KEEP)
                reason.append(f"not listed: {text}" if state == "match" else f"not listed: {text}")
            else:
                decision.append(ANONYMIZE)
                reason.append(text)
        return faces.with_columns(decision=np.array(decision, object), reason=np.array(reason, object))
