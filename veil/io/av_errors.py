"""FFmpeg's errors as one-line reasons for veil's messages (PyAV puts the text in ``strerror``)."""

from __future__ import annotations

__all__ = ["reason"]


def reason(exc: BaseException) -> str:
    """The error's text on one line (no file names added, no traceback)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())
