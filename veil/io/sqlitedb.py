"""A small SQLite file of veil's own (model records, monitoring statistics): created with
its tables on first use, one transaction per use, errors as one-line veil errors."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import VeilError

__all__ = ["transaction"]


@contextlib.contextmanager
def transaction(path: Path, schema: Sequence[str], error: type[VeilError], what: str) -> Iterator[sqlite3.Connection]:
    """A connection to ``path`` in a transaction (committed on success, rolled back on an
    exception), closed after; ``schema`` statements run first (``CREATE TABLE IF NOT EXISTS``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        con = sqlite3.connect(path, timeout=60)
        for statement in schema:
            con.execute(statement)
        con.commit()
    except (sqlite3.Error, OSError) as exc:
        raise error(f"{what} {path} cannot be used: {exc}") from None
    try:
        with con:
            yield con
    except sqlite3.Error as exc:
        raise error(f"{what} {path}: {exc}") from None
    finally:
        con.close()
