"""Policies decide, per face, whether it is anonymized and why."""

from .base import AllMustKeep, AnonymizeAll, Policy

__all__ = ["Policy", "AnonymizeAll", "AllMustKeep"]
