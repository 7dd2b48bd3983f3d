"""Reading JSON inputs (annotations, reports) with one-line errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CorruptMediaError, MediaNotFoundError

__all__ = ["load_json"]


def load_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse ``path``; MediaNotFoundError if absent, CorruptMediaError (file:line) if not JSON."""
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorruptMediaError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise CorruptMediaError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
