"""Parsing colours given on the command line ('#ff00ff', 'ff00ff', 'rebeccapurple', '255,0,255').

Names are the 148 CSS colour keywords (CSS Color Module Level 4), read from Pillow's table
(``PIL.ImageColor.colormap``), so ``--color`` accepts any name a web page would. A leaf
module: the config checks colours with it, the solid and image filters parse them.
"""

from __future__ import annotations

from PIL import ImageColor

from .errors import ConfigError

__all__ = ["parse_color", "CSS_COLORS"]

#: CSS colour keyword -> '#rrggbb' (Pillow's table of the CSS named colours)
CSS_COLORS: dict[str, str] = {k: v for k, v in ImageColor.colormap.items() if isinstance(v, str)}


def _hex(h: str) -> tuple[int, int, int] | None:
    h = h.removeprefix("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6:
        return None
    try:
        return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    except ValueError:
        return None


def parse_color(text: str) -> tuple[int, int, int]:
    """An RGB triple from a hex code, a CSS colour name or 'r,g,b'."""
    t = text.strip().lower().replace(" ", "")
    if t in CSS_COLORS:
        return _hex(CSS_COLORS[t])  # type: ignore[return-value]
    if "," in t:
        parts = t.split(",")
        if len(parts) == 3 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
            return tuple(int(p) for p in parts)  # type: ignore[return-value]
    rgb = _hex(t)
    if rgb is None:
        raise ConfigError(f"invalid colour {text!r}: use '#rrggbb', 'r,g,b' or a CSS colour name like 'black' or 'rebeccapurple'")
    return rgb
