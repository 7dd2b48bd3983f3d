"""Parsing colours given on the command line ('#ff00ff', 'ff00ff', 'black', '255,0,255')."""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["parse_color"]

_NAMED = {
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "magenta": (255, 0, 255), "fuchsia": (255, 0, 255), "cyan": (0, 255, 255), "orange": (255, 165, 0),
}


def parse_color(text: str) -> tuple[int, int, int]:
    """An RGB triple from a hex code, a CSS basic colour name or 'r,g,b'."""
    t = text.strip().lower()
    if t in _NAMED:
        return _NAMED[t]
    if "," in t:
        parts = t.split(",")
        if len(parts) == 3 and all(p.strip().isdigit() and 0 <= int(p) <= 255 for p in parts):
            return tuple(int(p) for p in parts)  # type: ignore[return-value]
    h = t.removeprefix("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) == 6:
        try:
            return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            pass
    raise ConfigError(f"invalid colour {text!r}: use '#rrggbb', 'r,g,b' or a name like 'black'")
