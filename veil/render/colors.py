"""Colour parsing for the filters: lives in :mod:`veil.colors` (a leaf the config can import
without loading the filters)."""

from ..colors import CSS_COLORS, parse_color

__all__ = ["parse_color", "CSS_COLORS"]
