"""The calling thread's side of a live run: frames -> ``process`` -> the shared encoder.

See :mod:`veil.io.live` for the policy (latency budget, drops, timestamps, what is kept).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import av
import av.error
import numpy as np

from ...config import VideoConfig
from ...errors import InputError, MediaTooLargeError, OutputError, ProcessingError, VeilError
from ..atomic import atomic_output
from ..av_errors import reason
from ..encoder import VideoEncoder, check_frame, choose_codec, close_output, encoder_time_base, open_output
from ..orientation import Orientation
from ..reader import MAX_PIXELS, MAX_SIDE
from .endpoints import StreamOptions, parse_sink, parse_source, refuse_existing
from .reader import EMPTY, EOF, Reader

__all__ = ["StreamStats", "anonymize_stream"]

log = logging.getLogger("veil")

_TB = Fraction(1, 90000)  # output time base (MPEG-TS's own)
_MAX_GAP = 10.0  # s: a larger jump between source timestamps is a discontinuity
_MIN_STEP = 0.001  # s: smallest gap between two written frames (Matroska counts ms)
_POLL = 0.1  # s: how often waiting loops look at `stop` / the reader
_WATCHDOG = 5.0  # s beyond the reader's own deadline before it is declared stuck


@dataclass(frozen=True)
class StreamStats:
    """What :func:`anonymize_stream` did. Every written frame went through ``process``."""

    frames_in: int  # video frames decoded from the source (damaged ones included)
    frames_out: int  # frames written
    dropped_late: int  # waited longer than max_latency_s: dropped before processing
    dropped_overflow: int  # queue full (source faster than processing): dropped before processing
    dropped_corrupt: int  # flagged damaged by the decoder or not convertible: dropped
    resized: int  # frames letterboxed to the first frame's size (resolution changed)
    reconnects: int  # successful reconnections to a network source
    width: int
    height: int
    fps: Optional[Fraction]  # the source's nominal frame rate, if it declares one
    duration_s: float  # of the written video, first to last frame
    latency_max_s: float  # longest delay from decoding a frame to handing it to the encoder (+ its queue)
    latency_mean_s: float
    seconds: float  # wall time of the run
    ended: str  # "eof" (source ended), "stop", "interrupted" or "error"

    @property
    def dropped(self) -> int:
        return self.dropped_late + self.dropped_overflow + self.dropped_corrupt


def anonymize_stream(
    src: Union[str, Path],
    dst: Union[str, Path],
    process: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]],
    cfg: VideoConfig,
    opts: Optional[StreamOptions] = None,
    on_frame: Optional[Callable[[int], None]] = None,
    stop: Optional[threading.Event] = None,
) -> StreamStats:
    """Read the live source ``src``, run its frames through ``process``, write them to ``dst``.

    Runs until the source ends (a pipe closed; a network source that cannot be reached
    again raises instead), ``stop`` is set, or Ctrl-C. ``process`` is the same generator
    :func:`~veil.io.video.transcode_video` takes. ``on_frame(n)`` is called after the n-th
    frame is written. ``cfg`` gives the codec, quality and preset (``start``/``end`` and
    ``copy_audio`` do not apply to live streams).

    Returns :class:`StreamStats` when the source ended or ``stop`` was set. Raises
    ConfigError (settings), InputError subclasses (the source: cannot open, not video,
    stalled, disconnected for good), OutputError, ProcessingError (``process`` broke its
    contract), and re-raises what ``process`` raises and KeyboardInterrupt. What is kept at
    a file ``dst`` in each case is described in the module docstring.
    """
    t0 = time.perf_counter()
    opts = opts if opts is not None else StreamOptions()
    source = parse_source(src, opts)
    sink = parse_sink(dst, opts)
    refuse_existing(sink, opts)
    codec = choose_codec(cfg, sink.fmt)
    if cfg.start is not None or cfg.end is not None:
        log.warning("start/end do not apply to live streams; ignored")
    live = opts.live if opts.live is not None else source.live
    reader = Reader(source, opts, live)
    job = _Job(source, sink, process, cfg, codec, opts, live, reader, on_frame, stop)
    reader.start()
    try:
        job.run()
    except BaseException as exc:
        job.ended = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
        with contextlib.suppress(AttributeError, TypeError):
            # whatever the exception, it carries what the run did to the caller's message
            exc.stream_stats = job.stats(time.perf_counter() - t0)  # type: ignore[attr-defined]
            exc.outcome = job.outcome()  # type: ignore[attr-defined]
        raise
    finally:
        reader.halt()
    stats = job.stats(time.perf_counter() - t0)
    log.info(
        "%s -> %s: %d frames %dx%d written, %d dropped (late %d, queue full %d, damaged %d), "
        "%d reconnection(s), delay max %.2f s, %.1f s, ended: %s",
        source.name, sink.name, stats.frames_out, stats.width, stats.height, stats.dropped, stats.dropped_late,
        stats.dropped_overflow, stats.dropped_corrupt, stats.reconnects, stats.latency_max_s, stats.seconds,
        stats.ended,
    )  # fmt: skip
    return stats


class _Job:
    """The calling thread's side: take frames, run ``process``, encode, keep the books."""

    def __init__(self, source, sink, process, cfg, codec, opts, live, reader, on_frame, stop):
        self.source, self.sink, self.process, self.cfg, self.codec = source, sink, process, cfg, codec
        self.opts, self.live, self.reader, self.on_frame, self.stop = opts, live, reader, on_frame, stop
        self.width = self.height = 0
        self.colors: dict = {}
        self.fifo: deque[tuple[float, float]] = deque()  # (output time, arrival) of frames in `process`
        self.frames_out = self.dropped_late = self.resized = self.converted_bad = 0
        self.latency_max = self.latency_sum = 0.0
        self.first_t: Optional[float] = None
        self.last_t_written = 0.0
        self.ended = "eof"
        self.stream_over = False  # the frames iterator ran out (end, stop or reader error)
        self.pending: Optional[BaseException] = None  # reader error, raised after `process` drains
        self.encoder: Optional[VideoEncoder] = None
        self.kept = False  # a file output was finalized and renamed over dst
        self.muxed = 0  # frames in the output, as its muxer counted them when it was closed
        # clock
        self.last_out: Optional[float] = None
        self.last_src: Optional[float] = None
        self.last_arrival = 0.0
        self.first_src: Optional[float] = None
        self.first_arrival = 0.0
        self._warned_clock = False
        self._sizes_warned: set = set()
        self._drop_log = (time.monotonic(), 0)

    # -- top level -------------------------------------------------------------------------

    def run(self) -> None:
        first = self._next_item()
        if first is None:  # stopped or ended before any frame
            if self.pending is not None:
                raise self.pending
            log.warning("%s: no video frame arrived; nothing written", self.source.name)
            return
        frame, turn = first[0], first[4]
        self.width, self.height = turn.size(frame.width, frame.height)  # as displayed
        if not turn.upright:
            log.info("%s: frames are %s for display; processing and writing them upright", self.source.name,
                     turn.describe())
        if self.width > MAX_SIDE or self.height > MAX_SIDE or self.width * self.height > MAX_PIXELS:
            raise MediaTooLargeError(f"{self.source.name}: video is {self.width}x{self.height}; too large")
        self.colors = {k: getattr(frame, k, 0) for k in ("colorspace", "color_range", "color_primaries", "color_trc")}
        if self.reader.has_audio:
            log.info("%s: audio is not passed through live streams", self.source.name)
        if self.sink.kind == "file":
            self._run_to_file(first)
        else:
            self._run_to_stream(first)

    def _run_to_file(self, first) -> None:
        pending: Optional[BaseException] = None
        dst = Path(self.sink.target)
        with contextlib.suppress(_NothingWritten), atomic_output(dst, replace=self.opts.overwrite,
                                                                 keep_on_conflict=True) as tmp:
            out = open_output(str(tmp), self.sink.fmt, dst.name, self.sink.options)
            try:
                try:
                    self._pass(out, first)
                except BaseException as exc:
                    if not self._keepable(exc):
                        raise
                    pending = exc
                if self.frames_out == 0:
                    raise _NothingWritten
                assert self.encoder is not None  # made by _pass
                self.encoder.finish()  # the frames still queued went through ``process``: kept
            except BaseException:
                self._close(out, finish=False)
                raise
            self._close(out, finish=True)
        self.kept = self.frames_out > 0  # renamed over dst (else nothing was: _NothingWritten)
        if pending is None and self.frames_out == 0:
            log.warning("%s: no frame was processed; nothing written to %s", self.source.name, dst)
        if pending is not None:
            raise _with_kept_note(pending, self.outcome())

    def _run_to_stream(self, first) -> None:
        out = open_output(self.sink.target, self.sink.fmt, self.sink.name, self.sink.options)
        try:
            try:
                self._pass(out, first)
            except BaseException as exc:
                if self._keepable(exc) and self.encoder is not None:
                    with contextlib.suppress(Exception):
                        self.encoder.finish()
                raise
            assert self.encoder is not None  # made by _pass
            self.encoder.finish()
        except BaseException:
            self._close(out, finish=False)
            raise
        self._close(out, finish=True)

    def _close(self, out, finish: bool) -> None:
        """Close the output (``finish``: write its trailer; raises OutputError if that fails),
        first noting how many frames it holds: the container's counters go with it."""
        if self.encoder is not None:
            self.encoder.abort()  # its thread must not write to a closed container (no-op once finished)
            self.muxed = self.encoder.frames  # the muxer's count, one packet a frame
        if finish:
            close_output(out, self.sink.name)
        else:
            with contextlib.suppress(Exception):
                out.close()

    def outcome(self) -> str:
        """What the run left at the output, as a clause for a message about how it ended.

        Counted by the muxer, not as frames given to the encoder: an abort inside an encode
        step (a second Ctrl-C) may lose that step's packets, and the count must be what the
        output holds."""
        n, where = self.muxed, self.sink.name
        if self.sink.kind != "file":
            return f"the {n} frame(s) anonymized before it were sent to {where}" if n else f"nothing was sent to {where}"
        if self.kept:
            return f"the {n} frame(s) anonymized before it were kept in {where}"
        return f"nothing was written to {where}"

    def _keepable(self, exc: BaseException) -> bool:
        return self.frames_out > 0 and self.encoder is not None and not isinstance(exc, OutputError)

    def _pass(self, out, first) -> None:
        """Frames -> ``process`` -> encoder; raises the reader's error once ``process`` drained."""
        self.encoder = VideoEncoder(
            out, self.codec, self.cfg, self.width, self.height, self.reader.fps or Fraction(30), self.colors,
            encoder_time_base(self.codec, self.sink.fmt, _TB, None), who=self.sink.name, where=f"to {self.sink.name}",
            low_delay=self.sink.kind != "file",
        )  # the same encoder (and background thread) as files; live sinks: low delay
        frames = self._frames(first)
        try:
            for arr in self.process(frames):
                self._write(arr)
        finally:
            frames.close()
        if not self.stream_over:
            raise ProcessingError(f"{self.source.name}: process stopped taking frames before the stream ended")
        if self.fifo:
            raise ProcessingError(
                f"{self.source.name}: process returned {self.frames_out} frames for {self.frames_out + len(self.fifo)}"
            )
        self._warn_if_not_live_input()
        if self.pending is not None:
            raise self.pending

    # -- taking frames ---------------------------------------------------------------------

    def _next_item(self):
        """The next frame to process, or None when the stream is over (see ``ended``)."""
        stall = self.opts.stall_timeout_s
        waiting_since = time.monotonic()
        while True:
            if self.stop is not None and self.stop.is_set():
                self.ended = "stop"
                return None
            item = self.reader.queue.get(_POLL)
            if item is EMPTY:
                # stuck: no progress by the reader's own deadline, while this thread waited too
                # (a long `process` call holding the GIL must not look like a stuck reader)
                if self.reader.stuck_for() > _WATCHDOG and time.monotonic() - waiting_since > _WATCHDOG:
                    self.pending = InputError(f"{self.source.name}: no data for over {stall:g} s (source stuck)")
                    self.ended = "error"
                    return None
                continue
            if item is EOF:
                self.ended = "eof"
                return None
            if isinstance(item, BaseException):
                self.pending = item
                self.ended = "error"
                return None
            if self.live and time.monotonic() - item[1] > self.opts.max_latency_s:
                self.dropped_late += 1
                self._log_drops()
                continue
            return item

    def _frames(self, first) -> Generator[np.ndarray, None, None]:
        item = first
        while True:
            if item is None:
                item = self._next_item()
                if item is None:
                    self.stream_over = True
                    return
            frame, arrival, t_src, disc, turn = item
            item = None
            arr = self._rgb(frame, turn)
            if arr is None:
                continue
            self.fifo.append((self._clock(t_src, arrival, disc), arrival))
            yield arr

    def _rgb(self, frame: av.VideoFrame, turn: Orientation) -> Optional[np.ndarray]:
        """RGB in display orientation at the first frame's size (letterboxed if the source
        changed resolution or orientation)."""
        w, h = turn.size(frame.width, frame.height)
        try:
            if (w, h) == (self.width, self.height):
                return np.ascontiguousarray(turn.apply(frame.to_ndarray(format="rgb24", threads=1)))
            if (w, h) not in self._sizes_warned:
                self._sizes_warned.add((w, h))
                log.warning(
                    "%s: resolution changed to %dx%d; scaling into the first frame's %dx%d (letterboxed)",
                    self.source.name, w, h, self.width, self.height,
                )  # fmt: skip
            scale = min(self.width / w, self.height / h)
            nw, nh = max(1, min(self.width, round(w * scale))), max(1, min(self.height, round(h * scale)))
            sw, sh = turn.size(nw, nh)  # as stored
            small = turn.apply(frame.reformat(width=sw, height=sh, format="rgb24", threads=1).to_ndarray())
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("%s: cannot convert a frame (%s); dropped", self.source.name, reason(exc))
            self.converted_bad += 1
            return None
        out = np.zeros((self.height, self.width, 3), np.uint8)
        y, x = (self.height - nh) // 2, (self.width - nw) // 2
        out[y : y + nh, x : x + nw] = small
        self.resized += 1
        return out

    def _clock(self, t_src: Optional[float], arrival: float, disc: bool) -> float:
        """Output time of the next frame (seconds from the first): see the module docstring."""
        if self.last_out is None:
            t = 0.0
            self.first_src, self.first_arrival = t_src, arrival
        else:
            dt = None
            if t_src is not None and self.last_src is not None and not disc:
                d = t_src - self.last_src
                if 0 < d <= _MAX_GAP:
                    dt = d
            if dt is None:
                if not disc and not self._warned_clock:
                    self._warned_clock = True
                    log.warning("%s: missing or jumping timestamps; timing frames by the clock", self.source.name)
                dt = arrival - self.last_arrival if self.live else 1 / float(self.reader.fps or 30)
            t = self.last_out + max(dt, _MIN_STEP)
        self.last_out, self.last_src, self.last_arrival = t, t_src, arrival
        return t

    def _log_drops(self) -> None:
        since, before = self._drop_log
        now = time.monotonic()
        if now - since >= 5.0:
            dropped = self.dropped_late + self.reader.queue.overflow
            if dropped > before:
                log.warning(
                    "%s: processing is slower than the stream; %d frame(s) dropped so far to keep the delay under %g s",
                    self.source.name, dropped, self.opts.max_latency_s,
                )  # fmt: skip
            self._drop_log = (now, dropped)

    def _warn_if_not_live_input(self) -> None:
        """A 'live' pipe that delivered much faster than real time was probably a file."""
        dropped = self.dropped_late + self.reader.queue.overflow
        if not self.live or self.ended != "eof" or dropped == 0 or self.first_src is None or self.last_src is None:
            return
        span_src = self.last_src - self.first_src
        span_wall = self.last_arrival - self.first_arrival
        if span_src > 1.5 * span_wall + 1.0:
            log.warning(
                "%s: the input arrived faster than real time (a file?) and %d frame(s) were dropped "
                "to keep the delay low; read it with live=False (or veil's video command) to keep every frame",
                self.source.name, dropped,
            )  # fmt: skip

    # -- writing ---------------------------------------------------------------------------

    def _write(self, arr) -> None:
        if not self.fifo:
            raise ProcessingError(f"{self.source.name}: process returned more frames than it was given")
        t, arrival = self.fifo.popleft()
        assert self.encoder is not None  # made by _pass before any frame
        self.encoder.submit(check_frame(arr, (self.height, self.width, 3), self.source.name), t)
        delay = time.monotonic() - arrival
        self.latency_max = max(self.latency_max, delay)
        self.latency_sum += delay
        if self.first_t is None:
            self.first_t = t
        self.last_t_written = t
        self.frames_out += 1
        if self.on_frame is not None:
            self.on_frame(self.frames_out)

    def stats(self, seconds: float) -> StreamStats:
        reader = self.reader
        return StreamStats(
            frames_in=reader.frames_in,
            frames_out=self.frames_out,
            dropped_late=self.dropped_late,
            dropped_overflow=reader.queue.overflow,
            dropped_corrupt=reader.dropped_corrupt + self.converted_bad,
            resized=self.resized,
            reconnects=reader.reconnects,
            width=self.width,
            height=self.height,
            fps=reader.fps,
            duration_s=self.last_t_written - (self.first_t or 0.0),
            latency_max_s=self.latency_max,
            latency_mean_s=self.latency_sum / self.frames_out if self.frames_out else 0.0,
            seconds=seconds,
            ended=self.ended,
        )


class _NothingWritten(Exception):
    """No frame was written: let atomic_output delete the empty temporary file."""


def _with_kept_note(exc: BaseException, note: str) -> BaseException:
    """``exc`` saying that the frames before it were kept, once: VeilErrors in their message;
    interruptions through ``exc.outcome`` (set for every exception; the caller reports it);
    anything else (an error inside ``process``) in a logged warning."""
    if isinstance(exc, KeyboardInterrupt):
        return exc
    if isinstance(exc, VeilError):
        msg = f"{exc}; {note}"
        with contextlib.suppress(Exception):
            new = type(exc)(msg)
            if str(new) == msg:
                new.__cause__, new.__suppress_context__ = exc.__cause__, True
                return new.with_traceback(exc.__traceback__)
    log.warning("the run ended with %s; %s", type(exc).__name__, note)
    return exc
