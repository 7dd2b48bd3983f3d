"""Policies decide, per face, whether it is anonymized and why."""

from .base import AllMustKeep, AnonymizeAll, Policy, Rule
from .build import build_policy

__all__ = ["Policy", "Rule", "AnonymizeAll", "AllMustKeep", "build_policy"]
