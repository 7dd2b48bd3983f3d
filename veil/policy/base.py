"""The policy protocol and the default policy.

A policy sets the ``decision`` and ``reason`` columns of :class:`~veil.faces.Faces` and
nothing else. Policies that spare someone (by identity, by distance) come later; they must
keep the rule that a face the policy cannot judge is anonymized.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..faces import ANONYMIZE, Faces

__all__ = ["Policy", "AnonymizeAll"]


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, faces: Faces) -> Faces:
        ...


class AnonymizeAll:
    """Anonymize every face the detector reports at or above the operating threshold."""

    name = "anonymize-all"

    def __init__(self, threshold: float):
        self.threshold = threshold

    def decide(self, faces: Faces) -> Faces:
        n = len(faces)
        source = faces.data.get("source", np.full(n, "detected", object))
        reasons = {
            "detected": f"detected (score >= {self.threshold:g})",
            "low": "low-score detection continuing a track",
            "coasted": "track lost: mask kept on its predicted position",
            "interpolated": "between two detections of the track",
            "extended": "before the track's first detection",
        }
        reason = np.array([reasons.get(s, str(s)) for s in source], object)
        return faces.with_columns(decision=np.full(n, ANONYMIZE, object), reason=reason)
