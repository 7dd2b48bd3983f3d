"""The weakest ``strength`` each filter may run at without ``allow_weak``, by filter name.

Measured with ``veil eval privacy --strengths ...``: below these, faces were re-identified or
still found by veil's detector (docs/benchmarks.md 3.1). A leaf module: the config checks a
strength against it without loading the filters (which import the config), and each filter
class carries its own floor as ``min_strength`` from here. Filters not listed have no floor.
"""

from __future__ import annotations

__all__ = ["MIN_STRENGTH"]

MIN_STRENGTH: dict[str, float] = {"blur": 0.8, "pixelate": 0.6}
