"""Where veil keeps its own files: the per-user data directory (audit log, signing key, model
registry state, fetched models, the default gallery) and the cache (derived files that can be
made again: int8 copies of the detectors).

``$VEIL_HOME`` wins (tests and services point it at their own folder); otherwise the platform's
per-user data directory from ``platformdirs`` (``~/.local/share/veil`` on Linux,
``~/Library/Application Support/veil`` on macOS, ``%LOCALAPPDATA%\\veil`` on Windows). The cache:
``$VEIL_CACHE``, else the platform's per-user cache directory (``$XDG_CACHE_HOME/veil`` or
``~/.cache/veil`` on Linux, ``~/Library/Caches/veil`` on macOS).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "CACHE_ENV", "data_dir", "cache_dir"]

HOME_ENV = "VEIL_HOME"
CACHE_ENV = "VEIL_CACHE"


def data_dir(create: bool = False) -> Path:
    """veil's data directory; ``create`` makes it (mode 0700: it holds keys and logs)."""
    if os.environ.get(HOME_ENV):
        path = Path(os.environ[HOME_ENV])
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("veil", appauthor=False))
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def cache_dir() -> Path:
    """veil's cache directory (not created here)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("veil", appauthor=False))
