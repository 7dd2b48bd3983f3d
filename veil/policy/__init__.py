"""Policies decide, per face, whether it is anonymized and why."""

from .base import AnonymizeAll, Policy

__all__ = ["Policy", "AnonymizeAll"]
