"""The live reader: opens, demuxes and decodes a source on its own thread, into a bounded queue.

Errors travel through the queue (behind the frames already queued) and are raised in the
calling thread; nothing waits forever (end-of-stream sentinels, polling with timeouts, a
watchdog for a reader stuck in a blocking call). Live: the queue holds about
``max_latency_s`` of video and drops its oldest frame when full; not live: the reader waits
for room. Network sources are reconnected with backoff (see :mod:`veil.io.live`); a pipe or
camera that stalls raises at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Optional

import av
import av.error

from ...errors import CorruptMediaError, InputError, MediaNotFoundError, UnsupportedMediaError
from ..av_errors import reason
from ..orientation import Orientation, frame_orientation
from .endpoints import Source, StreamOptions

__all__ = ["Reader", "EOF", "EMPTY"]

log = logging.getLogger("veil")

_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)  # s before reconnection attempt 1, 2, ... (then 8 s)
_POLL = 0.1  # s: how often waiting loops look at `stop` / the reader
_WATCHDOG = 5.0  # s beyond the reader's own deadline before it is declared stuck
_QUEUE_MAX = 120  # frames: queue cap for live sources (memory bound)
_NOT_LIVE_QUEUE = 8

class _Lost(Exception):
    """The source stopped delivering (stall, read error, end of a network stream)."""


class _Stalled(Exception):
    """A pipe gave no data for stall_timeout_s (raised inside PyAV's read callback)."""


EOF = object()  # the source ended normally
EMPTY = object()  # nothing arrived within the poll interval


class _FrameQueue:
    """Bounded FIFO between the reader and the calling thread.

    Live: ``put`` never blocks; when full the oldest frame is dropped. Not live: ``put``
    waits for room. ``finish`` posts the end (``EOF`` or an exception), delivered once the
    queued frames are taken.
    """

    def __init__(self, live: bool):
        self.live = live
        self.capacity = _NOT_LIVE_QUEUE
        self.overflow = 0
        self._items: deque = deque()
        self._end: Any = None
        self._closed = False
        self._cv = threading.Condition()

    def put(self, item) -> None:
        with self._cv:
            if self.live:
                while len(self._items) >= self.capacity:
                    self._items.popleft()
                    self.overflow += 1
            else:
                while len(self._items) >= self.capacity and not self._closed:
                    self._cv.wait(_POLL)
            if not self._closed:
                self._items.append(item)
                self._cv.notify_all()

    def finish(self, end) -> None:
        with self._cv:
            if self._end is None:
                self._end = end
            self._cv.notify_all()

    def get(self, timeout: float):
        with self._cv:
            if not self._items and self._end is None:
                self._cv.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._cv.notify_all()
                return item
            return self._end if self._end is not None else EMPTY

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._items.clear()
            self._cv.notify_all()


class _PipeFile:
    """A pipe for PyAV that a halt or a stall can interrupt (``select`` before each read)."""

    def __init__(self, fd: int, halted: threading.Event, stall_s: float):
        self.fd, self.halted, self.stall_s = fd, halted, stall_s
        self.touched: Callable[[], None] = lambda: None

    def readable(self) -> bool:
        return True

    def read(self, n: int) -> bytes:
        deadline = time.monotonic() + self.stall_s
        while not self.halted.is_set():
            ready, _, _ = select.select([self.fd], [], [], _POLL)
            if ready:
                try:
                    data = os.read(self.fd, n)
                except BlockingIOError:
                    continue
                self.touched()
                return data
            if time.monotonic() > deadline:
                raise _Stalled(f"no data for {self.stall_s:g} s")
        return b""  # halted: end of stream


class Reader:
    """Opens, demuxes and decodes the source in a daemon thread; reconnects network sources."""

    def __init__(self, source: Source, opts: StreamOptions, live: bool):
        self.source, self.opts = source, opts
        self.queue = _FrameQueue(live)
        self.halted = threading.Event()
        self.frames_in = self.dropped_corrupt = self.reconnects = 0
        self.fps: Optional[Fraction] = None
        self.has_audio = False
        self.deadline = time.monotonic() + self._open_allowance()  # watchdog: progress expected by then
        self._failures = 0
        self._got_frames = False
        self._discontinuity = False
        self._thread = threading.Thread(target=self._run, name="veil-stream-reader", daemon=True)
        self._fd: Optional[int] = None

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        """Ask the thread to stop and wait briefly; a thread blocked in a read stays behind as
        a daemon and ends when its read times out (network) or the process exits."""
        self.halted.set()
        self.queue.close()
        self._thread.join(timeout=0.5)
        if self._thread.is_alive():
            log.debug("%s: reader thread still blocked in a read; leaving it behind", self.source.name)

    def stuck_for(self) -> float:
        """Seconds past the point by which the reader should have shown progress."""
        return time.monotonic() - self.deadline

    def _touch(self, allowance: Optional[float] = None) -> None:
        self.deadline = time.monotonic() + (self.opts.stall_timeout_s if allowance is None else allowance)

    def _open_allowance(self) -> float:
        return 2 * self.opts.stall_timeout_s  # opening = connecting + probing

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
            self.queue.finish(EOF)
        except BaseException as exc:  # handed to the calling thread
            self.queue.finish(exc)

    def _loop(self) -> None:
        src = self.source
        while not self.halted.is_set():
            try:
                self._touch(self._open_allowance())
                with self._open() as inp:
                    self._pump(inp)
                if self.halted.is_set() or src.kind != "network":
                    return  # end of a pipe, device or file: the normal end
                why = "the source ended the stream"
            except _Lost as exc:
                why = str(exc)
                if src.kind != "network":
                    raise InputError(f"{src.name}: {why}") from None
            except InputError as exc:  # could not open
                if src.kind != "network" or not self._got_frames or self.halted.is_set():
                    raise
                why = str(exc)
            if self.halted.is_set():
                return
            self._wait_to_reconnect(why)

    def _wait_to_reconnect(self, why: str) -> None:
        src, limit = self.source, self.opts.reconnect
        why = why.removeprefix(f"{src.name}: ")
        if self._failures >= limit:
            tail = "reconnection is off" if limit == 0 else f"gave up after {limit} reconnection attempt(s)"
            raise InputError(f"{src.name}: connection lost ({why}); {tail}")
        delay = _BACKOFF[min(self._failures, len(_BACKOFF) - 1)]
        self._failures += 1
        log.warning(
            "%s: connection lost (%s); reconnecting in %.1f s (attempt %d of %d)",
            src.name, why, delay, self._failures, limit,
        )  # fmt: skip
        self._discontinuity = True
        self._touch(delay + self._open_allowance())
        self.halted.wait(delay)

    @contextlib.contextmanager
    def _open(self):
        src, stall = self.source, self.opts.stall_timeout_s
        try:
            if src.kind == "pipe":
                if src.fd is not None:
                    fd = src.fd
                else:  # a named pipe: open blocks until a writer appears (the watchdog covers it)
                    fd = self._fd = os.open(src.path, os.O_RDONLY)
                pipe = _PipeFile(fd, self.halted, stall)
                pipe.touched = self._touch
                inp = av.open(pipe, "r", format=src.fmt, options=src.options, buffer_size=65536)
            elif src.kind == "file":
                inp = av.open(src.target, "r", format=src.fmt, options=src.options)
            else:  # network, device: PyAV aborts blocking reads after `timeout`
                inp = av.open(src.target, "r", format=src.fmt, options=src.options, timeout=(2 * stall, stall))
        except _Stalled as exc:
            raise _Lost(str(exc)) from None
        except av.error.ExitError:
            raise _Lost(f"no data for {stall:g} s") from None
        except av.error.FFmpegError as exc:
            raise _open_error(src, exc) from None
        except OSError as exc:
            raise InputError(f"{src.name}: cannot open ({exc.strerror or exc})") from None
        except ValueError as exc:  # unknown format name
            raise UnsupportedMediaError(f"{src.name}: cannot open ({exc})") from None
        try:
            if not inp.streams.video:
                raise UnsupportedMediaError(f"{src.name}: no video stream")
            yield inp
        finally:
            with contextlib.suppress(Exception):
                inp.close()
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None

    def _pump(self, inp) -> None:
        src, stall = self.source, self.opts.stall_timeout_s
        vin = inp.streams.best("video") or inp.streams.video[0]
        if self.fps is None:
            rate = vin.average_rate or vin.guessed_rate
            self.fps = Fraction(rate) if rate and 1 <= rate <= 1000 else None
            per_s = float(self.fps or 30)
            self.queue.capacity = max(4, min(_QUEUE_MAX, math.ceil(self.opts.max_latency_s * per_s) + 2))
            self.has_audio = bool(inp.streams.audio)
        packets = inp.demux()  # all streams: time spent on audio/data packets counts towards a stall
        turn: Optional[Orientation] = None  # this connection's display orientation, once seen
        last_frame = time.monotonic()
        self._touch()
        while not self.halted.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                return
            except _Stalled as exc:
                raise _Lost(str(exc)) from None
            except av.error.ExitError:
                raise _Lost(f"no data for {stall:g} s") from None
            except av.error.EOFError:
                return
            except (av.error.FFmpegError, OSError) as exc:
                raise _Lost(f"read failed ({reason(exc)})") from None
            now = time.monotonic()
            self._touch()
            if packet.stream.index != vin.index:
                if now - last_frame > stall:
                    raise _Lost(f"no video frame for {stall:g} s")
                continue
            try:
                frames = vin.decode(packet)
            except av.error.FFmpegError:  # e.g. joined mid-GOP; the next keyframe repairs it
                frames = []
                self.dropped_corrupt += 1
            for frame in frames:
                self.frames_in += 1
                if frame.is_corrupt:
                    self.dropped_corrupt += 1
                    continue
                last_frame = now
                if not self._got_frames or self._failures:
                    if self._failures:
                        self.reconnects += 1
                        log.warning("%s: reconnected", src.name)
                    self._got_frames, self._failures = True, 0
                turn = frame_orientation(frame, vin.metadata, turn)
                self.queue.put((frame, time.monotonic(), frame.time, self._discontinuity, turn))
                self._discontinuity = False
                self._touch()  # a put may have waited for room (not live)
            if now - last_frame > stall:
                raise _Lost(f"no video frame for {stall:g} s")


def _open_error(src: Source, exc: av.error.FFmpegError) -> InputError:
    why = reason(exc)
    if isinstance(exc, av.error.InvalidDataError):
        return CorruptMediaError(f"{src.name}: not a video stream veil can read ({why})")
    if isinstance(exc, FileNotFoundError):
        return MediaNotFoundError(f"{src.name}: not found ({why})")
    if isinstance(exc, av.error.ProtocolNotFoundError) or "protocol not found" in why.lower():
        return UnsupportedMediaError(f"{src.name}: this FFmpeg build cannot read that protocol ({why})")
    if isinstance(exc, (av.error.DemuxerNotFoundError, av.error.DecoderNotFoundError)):
        return UnsupportedMediaError(f"{src.name}: unsupported stream ({why})")
    if isinstance(exc, OSError):
        return InputError(f"{src.name}: cannot connect ({why})")
    return InputError(f"{src.name}: cannot open ({why})")
