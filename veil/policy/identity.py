"""Policies by identity: spare listed people (``--spare``, ``--spare-enrolled``) or anonymize
only listed people (``--only``).

They read the identify stage's columns (:mod:`veil.identify.track_identity`): ``identity``,
``data["id_state"]`` (match / unknown / uncertain / pending) and ``data["id_distance"]``.
Privacy wins when in doubt: an uncertain or not-yet-identified face is anonymized in both
modes, and so is any face when the identify stage did not run.

Reports name only the people whose faces stay visible: the reason of an anonymized face does
not say who it is (or who it looked like), and :meth:`_ByIdentity.redact` clears the
``identity`` of every face the final decision anonymizes, whichever rule anonymized it. Hiding
a face and then writing the person's name next to its box would undo the anonymization.
``name_hidden=True`` (``--name-hidden``) names them anyway, for a user who needs an audit
trail of whom they hid.
"""

from __future__ import annotations

import numpy as np

from ..faces import ANONYMIZE, ID_CANDIDATE, ID_DISTANCE, ID_STATE, KEEP, MATCH, PENDING, UNCERTAIN, UNKNOWN, Faces
from .base import Rule

__all__ = ["SpareIdentities", "OnlyIdentities"]


def _describe(state: str, name, cand, dist: float, named: bool = True) -> str:
    """The reason text; ``named=False`` leaves every name out (for anonymized faces)."""
    d = "" if not np.isfinite(dist) else f" (distance {dist:.2f})"
    if state == MATCH:
        return f"{name}{d}" if named else f"an enrolled person{d}"
    if state == UNKNOWN:
        return f"unknown{d}"
    if state == UNCERTAIN:
        return f"uncertain: closest enrolled {cand}{d}" if cand and named else f"uncertain{d}"
    return "not identified yet (no good view of the face so far)"


class _ByIdentity(Rule):
    name = "identity"

    def __init__(self, names: list[str] | None, name_hidden: bool = False):
        self.names = None if names is None else set(names)
        self.name_hidden = name_hidden

    def redact(self, faces: Faces, decision: np.ndarray) -> dict[str, np.ndarray]:
        """Clear the names of the faces ``decision`` anonymizes (unless ``name_hidden``)."""
        if self.name_hidden or not len(faces):
            return {}
        hidden = decision != KEEP
        if not any(n is not None for n in faces.identity[hidden]):
            return {}
        identity = faces.identity.copy()
        identity[hidden] = None
        return {"identity": identity}

    def _rows(self, faces: Faces):
        n = len(faces)
        states = faces.data.get(ID_STATE, np.full(n, PENDING, object))
        dists = faces.data.get(ID_DISTANCE, np.full(n, np.nan, np.float32))
        cands = faces.data.get(ID_CANDIDATE, np.full(n, None, object))
        for i in range(n):
            yield str(states[i]), faces.identity[i], cands[i], float(dists[i])

    def _listed(self, name) -> bool:
        return name is not None and (self.names is None or name in self.names)


class SpareIdentities(_ByIdentity):
    """Keep faces confidently identified as one of ``names`` (None = anyone enrolled)."""

    name = "spare"

    def judge(self, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
        decision, reason = [], []
        for state, name, cand, dist in self._rows(faces):
            if state == MATCH and self._listed(name):
                decision.append(KEEP)
                reason.append(f"spared: {_describe(state, name, cand, dist)}")
                continue
            text = _describe(state, name, cand, dist, self.name_hidden)
            decision.append(ANONYMIZE)
            reason.append(f"identified as {text}, not spared" if state == MATCH else text)
        return np.array(decision, object), np.array(reason, object)


class OnlyIdentities(_ByIdentity):
    """Anonymize faces identified as one of ``names``, and every uncertain face."""

    name = "only"

    def judge(self, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
        decision, reason = [], []
        for state, name, cand, dist in self._rows(faces):
            if state == MATCH and self._listed(name):
                decision.append(ANONYMIZE)
                reason.append(f"listed for anonymization: {_describe(state, name, cand, dist, self.name_hidden)}")
            elif state in (MATCH, UNKNOWN):
                decision.append(KEEP)
                reason.append(f"not listed: {_describe(state, name, cand, dist)}")
            else:
                decision.append(ANONYMIZE)
                reason.append(_describe(state, name, cand, dist, self.name_hidden))
        return np.array(decision, object), np.array(reason, object)
