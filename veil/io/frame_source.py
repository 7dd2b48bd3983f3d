"""Frames of one media file by index, exact in time (random access for review and following).

A browser's ``currentTime`` is not frame-exact, and following a face from a drawn box needs
the frames on either side of it, so both the review app and ``veil render`` (a plan's
``follow`` tracks) ask for a frame *index* of the plan: the index's timestamp from the plan's
table is looked up in the decoded stream (stepping forward decodes one frame; a jump seeks to
the keyframe before it). Frames are in display orientation, as the plan's boxes.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import av
import numpy as np

if TYPE_CHECKING:
    from .orientation import Orientation

__all__ = ["FrameSource"]

_EPS = 1e-4


class FrameSource:
    """Frames of one media file by plan index (thread-safe; one decoder per file).

    With ``prefetch`` > 0, each request moves a target ``prefetch`` frames past it, and one
    background thread decodes up to that target into the cache while the caller encodes and
    sends this frame, so a reviewer stepping forward finds the next frame decoded. It only
    continues the running decoder (never seeks) and takes the decoder's lock one frame at a
    time, so a request waits for at most one frame; a hit in the cache waits for nothing.
    """

    def __init__(self, media: Path, kind: str, timestamps: list[float], cache_bytes: int = 256 << 20,
                 keep_before: int = 16, prefetch: int = 0):
        self.media, self.kind, self.times = Path(media), kind, list(timestamps)
        self.lock = threading.Lock()
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cache_bytes = cache_bytes
        self.cache_size = 8  # frames; set from the frame size at the first decode
        self.keep_before = keep_before  # a seek back also keeps this many frames before the target
        self.container: Optional[av.container.InputContainer] = None
        self.frames: Optional[Iterator] = None
        self.next_index: Optional[int] = None  # index the running decoder yields next
        self.turn: Optional[Orientation] = None
        self.prefetch = prefetch if kind == "video" else 0
        self.cache_lock = threading.Lock()  # the cache and the prefetch target (taken after ``lock``)
        self.ahead_to = -1  # the prefetch decodes up to this index
        self.prefetching = False

    def frame(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self.times):
            raise IndexError(f"frame {index} is outside 0..{len(self.times) - 1}")
        rgb = self._cached(index)
        if rgb is None:
            with self.lock:
                rgb = self._cached(index)  # the prefetch may have decoded it meanwhile
                if rgb is None:
                    rgb = self._image() if self.kind == "image" else self._video(index)
                    self._remember(index, rgb)
        if self.prefetch:
            self._start_prefetch(index)
        return rgb

    def _cached(self, index: int) -> Optional[np.ndarray]:
        with self.cache_lock:
            rgb = self.cache.get(index)
            if rgb is not None:
                self.cache.move_to_end(index)
            return rgb

    def _start_prefetch(self, index: int) -> None:
        with self.cache_lock:
            self.ahead_to = min(len(self.times) - 1, index + self.prefetch)
            if self.prefetching:  # the running thread reads the new target
                return
            self.prefetching = True
        threading.Thread(target=self._prefetch, name="veil-prefetch", daemon=True).start()

    def _prefetch(self) -> None:
        while self._prefetch_one():
            pass

    def _prefetch_one(self) -> bool:
        """Decode the running decoder's next frame if it is before the target."""
        with self.lock:
            with self.cache_lock:  # the decision to stop and the flag change together
                j = self.next_index
                if (j is None or j > self.ahead_to or self.container is None
                        or all(k in self.cache for k in range(j, self.ahead_to + 1))):
                    self.prefetching = False
                    return False
            try:
                rgb = self._video(j)
            except Exception:  # noqa: BLE001 -- a request for this frame seeks again and raises it
                self.next_index = None
                with self.cache_lock:
                    self.prefetching = False
                return False
            self._remember(j, rgb)
            return True

    def _remember(self, index: int, rgb: np.ndarray) -> None:
        with self.cache_lock:
            self.cache_size = max(8, self.cache_bytes // max(1, rgb.nbytes))
            self.cache[index] = rgb
            self.cache.move_to_end(index)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def close(self) -> None:
        with self.lock:
            if self.container is not None:
                self.container.close()
                self.container = None

    # -- internals -------------------------------------------------------------------------
    def _image(self) -> np.ndarray:
        from .images import read_image

        return read_image(self.media).rgb

    def _open(self) -> None:
        self.turn = None  # the last display orientation seen (veil.io.orientation, as the transcoder)
        self.container = av.open(str(self.media))
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        assert self.stream.time_base is not None  # FFmpeg gives every demuxed stream one
        self.tb = Fraction(self.stream.time_base)

    def _video(self, index: int) -> np.ndarray:
        if self.container is None:
            self._open()
        if self.next_index != index:
            self._seek(index)
        assert self.frames is not None  # the decoder of the last seek
        for frame in self.frames:
            i = self._index_of(frame)
            if i is None or i < index - self.keep_before:
                continue
            rgb = self._upright(frame)
            if i < index:  # decoded on the way from the keyframe: the next steps back are free
                self._remember(i, rgb)
                continue
            self.next_index = i + 1
            return rgb  # frame `index`, or the next one the stream has
        raise IndexError(f"frame {index} could not be decoded")

    def _seek(self, index: int) -> None:
        target = self.times[index]
        assert self.container is not None  # opened by _video
        self.container.seek(max(0, int((target - 0.05) / self.tb)), stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)
        self.next_index = None

    def _index_of(self, frame) -> Optional[int]:
        if frame.pts is None:
            return None
        t = float(frame.pts * self.tb)
        j = bisect.bisect_left(self.times, t - _EPS)
        return j if j < len(self.times) and abs(self.times[j] - t) < 0.5 / max(1.0, self._fps()) else None

    def _fps(self) -> float:
        if len(self.times) < 2:
            return 30.0
        return (len(self.times) - 1) / max(1e-6, self.times[-1] - self.times[0])

    def _upright(self, frame) -> np.ndarray:
        """Display orientation (the plan's): the frame's display matrix, else the last one seen,
        else the stream's rotate tag -- the rule :mod:`veil.io.video` applies before analysis."""
        from .orientation import frame_orientation

        self.turn = frame_orientation(frame, self.stream.metadata, self.turn)
        return np.ascontiguousarray(self.turn.apply(frame.to_ndarray(format="rgb24")))
