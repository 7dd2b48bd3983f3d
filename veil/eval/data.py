"""Where the evaluation data lives: ``$VEIL_DATA``, default ``../shared/data``.

The default is looked up next to a source checkout first, then next to the working
directory, so that ``veil eval ...`` works from the repository without settings.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_data"]


def default_data(rel: str | Path = "") -> Path:
    """``$VEIL_DATA/<rel>``; without VEIL_DATA the first ``../shared/data/<rel>`` that exists."""
    if os.environ.get("VEIL_DATA"):
        return Path(os.environ["VEIL_DATA"]) / rel
    candidates = [Path(__file__).resolve().parents[2].parent / "shared" / "data",
                  Path.cwd().parent / "shared" / "data"]
    root = next((c for c in candidates if (c / rel).exists()), candidates[0])
    return root / rel
