"""The protocol every annotating stage (identify, distance) follows, and the data it is given.

A stage adds columns to :class:`~veil.faces.Faces` and keeps whatever state it needs across
the frames of one input. The pipeline talks to it through four calls only, and hands it data
rather than letting anyone peek at its attributes:

* ``begin_item(item)``: a new input starts (an image with its camera data, a video, a
  stream); per-input state and counters start again;
* ``reset()``: forget per-video state (tracks, maps) without starting a new input (a
  caller replaying frames);
* ``annotate(frame, faces, info)``: one frame, in order; ``info`` is that frame's
  :class:`FrameInfo`: what the pipeline knows about it (camera data) and what stages
  learn about it besides its faces (a dense depth map, for the background blur);
* ``stats``: counters for the report since ``begin_item`` (empty: nothing to report).

:class:`StageBase` gives the defaults, so a stage writes only what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .faces import Faces

__all__ = ["Stage", "StageBase", "Item", "FrameInfo"]


@dataclass(frozen=True)
class Item:
    """One input of a run, as the stages see it.

    ``kind``: ``image``, ``video``, ``stream`` or ``frame``; ``camera``: a still image's
    camera tags (EXIF focal length, see :meth:`veil.io.images.LoadedImage.camera_tags`).
    """

    kind: str
    camera: dict[str, Any] | None = None


@dataclass
class FrameInfo:
    """One frame's data besides its faces, passed from stage to stage and to the renderer."""

    #: the still image's camera tags, on the frame that is that image (else None)
    camera: dict[str, Any] | None = None
    #: dense depth in metres at any resolution (NaN: no reading), when a stage measured it
    depth_m: np.ndarray | None = None


@runtime_checkable
class Stage(Protocol):
    name: str

    def begin_item(self, item: Item) -> None: ...

    def reset(self) -> None: ...

    def annotate(self, frame: np.ndarray, faces: Faces, info: FrameInfo | None = None) -> Faces: ...

    @property
    def stats(self) -> dict[str, float]: ...


class StageBase:
    """Defaults for :class:`Stage`: a new input resets the stage; no counters."""

    name = "stage"

    def begin_item(self, item: Item) -> None:
        self.reset()

    def reset(self) -> None:
        pass

    @property
    def stats(self) -> dict[str, float]:
        return {}
