"""File names and messages made safe to print on a terminal.

A file name may hold a newline (a fake second line, e.g. a fake "0 failed"), terminal escape
codes (which can recolour, hide or rewrite what is shown), bidirectional overrides (which
reorder what is read) or bytes that are not UTF-8 (which would crash the print). Everything
the CLI prints that can contain a path goes through :func:`printable`, which shows such
characters as escapes (``\\n``, ``\\x1b``, ``\\u202e``), the way Python's ``repr`` does.
"""

from __future__ import annotations

import logging
import re

from rich.markup import escape

__all__ = ["printable", "markup_safe", "PrintableFormatter"]

#: C0 and C1 controls, DEL, line/paragraph separators, bidi marks, embeddings, overrides and
#: isolates, and lone surrogates (undecodable bytes of a file name, see PEP 383).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: object) -> str:
    """``text`` with control and direction characters escaped: one visible line."""
    return _UNSAFE.sub(_escape, str(text))


def markup_safe(text: object) -> str:
    """:func:`printable`, and Rich markup (``[red]``) in it shown literally."""
    return escape(printable(text))


class PrintableFormatter(logging.Formatter):
    """Log records (which name files) printed as one escaped line each."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))
