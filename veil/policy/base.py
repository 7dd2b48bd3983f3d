"""The policy protocol and the default policy.

A policy sets the ``decision`` and ``reason`` columns of :class:`~veil.faces.Faces` and
nothing else. Policies that spare someone (by identity, by distance) come later; they must
keep the rule that a face the policy cannot judge is anonymized. :mod:`veil.policy.build`
makes the policy a :class:`~veil.config.Config` asks for.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..faces import ANONYMIZE, COASTED, DETECTED, EXTENDED, INTERPOLATED, KEEP, LOW, SOURCE, Faces

__all__ = ["Policy", "Rule", "AnonymizeAll", "AllMustKeep"]


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, faces: Faces) -> Faces:
        ...

    def reset(self) -> None:
        """Forget per-video state (hysteresis); a new input starts."""
        ...


class Rule:
    """One rule of a policy (spare by identity, anonymize beyond a distance, ...).

    A rule *judges*: :meth:`judge` returns its ``decision`` and ``reason`` arrays and builds
    nothing, so that :class:`AllMustKeep` builds the decided :class:`Faces` once. After the
    final decision a rule may :meth:`redact` columns it annotated (names of anonymized faces).
    :meth:`decide` is the rule on its own.
    """

    name = "rule"

    def judge(self, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def redact(self, faces: Faces, decision: np.ndarray) -> dict[str, np.ndarray]:
        """Columns to replace once ``decision`` (the final one) is known; none by default."""
        return {}

    def reset(self) -> None:
        pass

    def decide(self, faces: Faces) -> Faces:
        decision, reason = self.judge(faces)
        return faces.with_columns(decision=decision, reason=reason)


class AnonymizeAll(Rule):
    """Anonymize every face the detector reports at or above the operating threshold."""

    name = "anonymize-all"

    def __init__(self, threshold: float):
        self.threshold = threshold

    def judge(self, faces: Faces) -> tuple[np.ndarray, np.ndarray]:
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
        return np.full(n, ANONYMIZE, object), reason


class AllMustKeep:
    """Combine rules: a face stays visible only if every rule keeps it.

    Each rule (spare by identity, anonymize only beyond a distance, ...) judges the faces on
    its own, starting from ``base``'s decision; a face any rule anonymizes is anonymized,
    with that rule's reason. This is the conservative reading of combined flags: privacy
    wins whenever the rules disagree. The decided faces are built once.
    """

    name = "all-must-keep"

    def __init__(self, base: Rule, rules: list[Rule]):
        self.base = base
        self.rules = rules

    def reset(self) -> None:
        for rule in (self.base, *self.rules):
            rule.reset()

    def decide(self, faces: Faces) -> Faces:
        decision, reason = self.base.judge(faces)
        if not self.rules:
            return faces.with_columns(decision=decision, reason=reason)
        verdicts = [rule.judge(faces) for rule in self.rules]
        keep = np.logical_and.reduce([d == KEEP for d, _ in verdicts])
        reasons = []
        for i in range(len(faces)):
            if keep[i]:
                reasons.append("; ".join(str(r[i]) for _, r in verdicts))
            else:
                reasons.append(next(str(r[i]) for d, r in verdicts if d[i] != KEEP))
        decision = np.where(keep, KEEP, ANONYMIZE).astype(object)
        changes: dict[str, np.ndarray] = {}
        for rule in self.rules:  # a rule may redact what it annotated, once the final decision is known
            changes.update(rule.redact(faces, decision))
        return faces.with_columns(decision=decision, reason=np.array(reasons, object), **changes)
