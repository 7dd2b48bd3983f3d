"""The policy protocol and the default policy.

A policy sets the ``decision`` and ``reason`` columns of :class:`~veil.faces.Faces` and
nothing else. Policies that spare someone (by identity, by distance) come later; they must
keep the rule that a face the policy cannot judge is anonymized.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..faces import ANONYMIZE, COASTED, DETECTED, EXTENDED, INTERPOLATED, KEEP, LOW, SOURCE, Faces

__all__ = ["Policy", "AnonymizeAll", "AllMustKeep"]


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
        source = faces.data.get(SOURCE, np.full(n, DETECTED, object))
        reasons = {
            DETECTED: f"detected (score >= {self.threshold:g})",
            LOW: "low-score detection continuing a track",
            COASTED: "track lost: mask kept on its predicted position",
            INTERPOLATED: "between two detections of the track",
            EXTENDED: "before the track's first detection",
        }
        reason = np.array([reasons.get(s, str(s)) for s in source], object)
        return faces.with_columns(decision=np.full(n, ANONYMIZE, object), reason=reason)


class AllMustKeep:
    """Combine rules: a face stays visible only if every rule keeps it.

    Each rule (spare by identity, anonymize only beyond a distance, ...) judges the faces on
    its own, starting from ``base``'s decision; a face any rule anonymizes is anonymized,
    with that rule's reason. This is the conservative reading of combined flags: privacy
    wins whenever the rules disagree.
    """

    name = "all-must-keep"

    def __init__(self, base: Policy, rules: list[Policy]):
        self.base = base
        self.rules = rules

    def decide(self, faces: Faces) -> Faces:
        base = self.base.decide(faces)
        if not self.rules:
            return base
        verdicts = [rule.decide(base) for rule in self.rules]
        keep = np.logical_and.reduce([v.decision == KEEP for v in verdicts])
        reason = []
        for i in range(len(faces)):
            if keep[i]:
                reason.append("; ".join(str(v.reason[i]) for v in verdicts))
            else:
                reason.append(next(str(v.reason[i]) for v in verdicts if v.decision[i] != KEEP))
        decision = np.where(keep, KEEP, ANONYMIZE).astype(object)
        out = base.with_columns(decision=decision, reason=np.array(reason, object))
        for rule in self.rules:  # a rule may redact what it annotated, once the final decision is known
            out = getattr(rule, "finalize", lambda f: f)(out)
        return out
