"""Who is enrolled, as the gallery hands it out, and the gallery's errors.

A leaf of :mod:`veil.identify`: enrolment (:mod:`.enroll`) and the gallery (:mod:`.gallery`)
both use these, without importing each other back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["GalleryError", "GalleryKeyError", "Person"]


class GalleryError(InputError):
    """The gallery cannot be used: missing, empty, corrupt, or a bad request (exit code 3)."""


class GalleryKeyError(GalleryError):
    """No key, or the wrong key, for an encrypted gallery."""


@dataclass(frozen=True)
class Person:
    name: str
    purpose: str | None
    consent_date: str | None  # ISO date
    expires: str | None  # ISO date, None = no expiry
    n_embeddings: int

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and dt.date.fromisoformat(self.expires) < (today or dt.date.today())
