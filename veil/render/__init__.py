"""Filters that hide faces, looked up by name (the CLI's ``--filter`` choices come from here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Filter, MaskedFilter
from .blur import Blur
from .debug import Debug, NoFilter
from .pixelate import Pixelate
from .replace import ReplaceImage
from .solid import Solid

if TYPE_CHECKING:  # the config looks filters up (strength floors): no import back at run time
    from ..config import RenderConfig

__all__ = ["Filter", "MaskedFilter", "FILTERS", "build_filter", "Blur", "Pixelate", "Solid", "ReplaceImage", "Debug", "NoFilter"]

#: name -> filter class. Add a filter by adding a class here.
FILTERS: dict[str, type] = {cls.name: cls for cls in (Blur, Pixelate, Solid, ReplaceImage, NoFilter, Debug)}


def build_filter(cfg: RenderConfig) -> Filter:
    cls = FILTERS.get(cfg.filter)
    if cls is None:
        raise ConfigError(f"unknown filter {cfg.filter!r}; choose one of {', '.join(FILTERS)}")
    kw: dict = dict(shape=cfg.shape, mask_scale=cfg.mask_scale, feather=cfg.feather, strength=cfg.strength, head=cfg.head)
    if cls is Solid:
        kw["color"] = cfg.color
    if cls is ReplaceImage:
        kw.update(image=cfg.image, color=cfg.color)
    return cls(**kw)


def anonymizes(flt: Filter) -> bool:
    """False for the pass-through and debug filters."""
    return getattr(flt, "anonymizes", True)
