"""sha256 of a file as it is on disk now.

The model registry caches hashes on (path, mtime, size) because a run loads the same model
many times; checks that exist to catch a changed file (``veil verify``, ``veil models
verify``) must not: a same-size edit within the filesystem's timestamp granularity keeps
both."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_now"]


def sha256_now(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
