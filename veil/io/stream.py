"""Live input and output: cameras, network streams and pipes, with bounded latency.

Sources: ``-`` (stdin), a named pipe (FIFO), a camera (``/dev/video0`` or ``v4l2:/dev/video0``;
``avfoundation:0`` / ``dshow:video=NAME`` where FFmpeg has them), network URLs (``rtsp://``,
``rtmp://``, ``udp://``, ``tcp://``, ``srt://``, ``http(s)://`` incl. HLS ``.m3u8``), and for
testing a regular file. Sinks: a file (``.mp4 .mov .mkv .webm .ts .flv``), ``-`` (stdout,
MPEG-TS, for chaining into ffmpeg/ffplay) or a network URL (``udp://`` / ``tcp://`` /
``srt://`` MPEG-TS, ``rtsp://`` pushed to a server, ``rtmp://`` FLV). The frames go through
the same ``process`` generator as :func:`veil.io.video.transcode_video`: RGB uint8 in, exactly
one frame of the same shape out per frame in, in order; it may buffer.

How it works, and why:

* **Two threads, one bounded queue.** A reader thread demuxes and decodes the source; the
  calling thread takes frames from the queue, feeds ``process`` and encodes what it yields.
  Errors in the reader travel through the queue (behind the frames already queued) and are
  raised in the calling thread; nothing is swallowed and nothing waits forever (end-of-stream
  sentinels, polling with timeouts, a watchdog for a reader stuck in a blocking call).
* **Latency/drop policy (live sources).** A frame's age is counted from the moment it was
  decoded. ``max_latency_s`` is a budget, not a target: frames go to ``process`` oldest
  first, so a short hiccup (a slow batch, a GC pause) is absorbed and nothing is lost; a
  frame that has waited longer than the budget when its turn comes is dropped, and so is the
  oldest frame when the queue (sized to hold about ``max_latency_s`` of video) is full. When
  processing is slower than the source, veil therefore keeps the newest frames it can still
  deliver within the budget, the delay stays at most about ``max_latency_s`` plus the time
  ``process`` takes (plus whatever ``process`` itself buffers: use ``batch=1`` for the
  lowest delay), and the output simply has fewer frames (their timestamps keep the real
  gaps). Sources that deliver in bursts (HLS segments, the backlog sent on connecting)
  may lose the oldest frames of a burst; a ``max_latency_s`` of a segment's length avoids
  that. Drops happen *before* ``process``: a dropped frame is never written, never
  written raw, and no frame reaches the output without going through ``process``. Frames the
  decoder flags as damaged (lost packets) are dropped too: concealment smears faces that a
  detector may then miss. Counts are in :class:`StreamStats`.
* **Not live** (stdin redirected from a regular file, a regular file, or
  ``StreamOptions(live=False)``): the reader waits for room in the queue instead (the source
  is read only as fast as it is processed); nothing is dropped for latency. A pipe is taken
  to be live (``ffmpeg -f v4l2 ... | veil``); ``cat clip.mp4 | veil`` arrives faster than
  real time, so most frames would be dropped: pass ``live=False`` there (a warning says so).
* **Timestamps** are monotonic: the gap between two written frames is the gap between their
  source timestamps when that is sane (positive, under 10 s, no reconnection in between),
  else the wall-clock gap between their arrivals (live) or one nominal frame (not live).
  Output starts at 0. Audio is not passed through: a live stream is video only (the voice
  in it would be as identifying as the face).
* **Resolution change mid-stream:** every frame is scaled to fit the first frame's size,
  keeping its aspect ratio, centred on black bars (letterbox), *before* ``process``. So
  ``process`` always sees one shape (trackers keep working), the encoder never restarts (an
  mp4 cannot change size mid-file) and the output has one size. A warning is logged once per
  new size; ``StreamStats.resized`` counts such frames.
* **Rotation:** a source can carry a display matrix (a tagged file, Matroska or fragmented
  MP4 through a pipe, an H.264 display-orientation SEI) or a legacy ``rotate`` tag, as
  files do. Every frame is turned into display orientation before ``process`` and written
  upright, exactly as :func:`~veil.io.video.transcode_video` does (see its module
  docstring for why); a frame whose orientation changes the shape mid-stream is
  letterboxed like a resolution change.
* **Network sources** are assumed live: the end of the data, a read error or no video frame
  for ``stall_timeout_s`` means the connection was lost; veil reconnects up to
  ``reconnect`` times, waiting 0.5, 1, 2, 4, 8, 8... s, and the count starts again once
  frames flow again. Giving up raises :class:`~veil.errors.InputError`. The *first*
  connection is not retried: a wrong URL or a server that is not up fails at once, clearly.
  A pipe or camera that stalls for ``stall_timeout_s`` raises at once (it cannot be
  reopened); a pipe that ends is the normal end of the stream.
* **Input that is not video** (garbage) fails with :class:`~veil.errors.CorruptMediaError`;
  no video stream, an unknown protocol or device type with
  :class:`~veil.errors.UnsupportedMediaError`; all messages are one line, and URLs are shown
  without their user name and password.
* **What is kept when a live run ends early.** A live stream has no natural end, so a run
  usually ends with ``stop`` or Ctrl-C; the frames written so far are then the result the
  user wants. Unlike :func:`~veil.io.video.transcode_video` (all or nothing), a *file*
  output is therefore finalized (encoder flushed, container trailer written, temporary file
  renamed over ``dst``) when the run ends by ``stop`` (``anonymize_stream`` returns),
  by ``KeyboardInterrupt`` (finalized, then re-raised; Ctrl-C is held while a frame is
  encoded and muxed, so that no frame already encoded goes missing) or by an error after frames were
  written (finalized, then the error is raised; its message says how many frames were kept
  where). Every frame in it went through ``process``. Nothing is kept when no frame was
  written or when the output itself failed (:class:`~veil.errors.OutputError`): the
  temporary file is deleted. SIGTERM is a ``KeyboardInterrupt`` too where the program asked
  for it (:func:`veil.io.interrupts.terminate_as_interrupt`; the ``veil`` CLI does), and it
  is held like Ctrl-C. A hard kill (SIGKILL, power loss) leaves only the hidden ``.part``
  temporary file; the next run that writes into that folder removes it (see
  :mod:`veil.io.atomic`). Raised exceptions carry the run's :class:`StreamStats` as
  ``exc.stream_stats`` and what was left at ``dst`` as a clause for a message,
  ``exc.outcome`` ("the 57 frame(s) anonymized before it were kept in rec.mp4", "nothing
  was written to rec.mp4"). On ``stop`` ``process`` is allowed to finish the frames it
  holds; on Ctrl-C or an error inside ``process`` those are lost (never written raw).

Stdout and network outputs are written as frames come (``tune=zerolatency`` for x264/x265,
a keyframe every 2 s so that viewers can join). A ``tcp://`` output gets a ``timeout`` of
``stall_timeout_s`` (unless the URL sets one) so that a receiver that stops reading raises
an OutputError instead of blocking forever.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import select
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import urlsplit, urlunsplit

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from ..config import VideoConfig
from ..errors import (
    ConfigError,
    CorruptMediaError,
    InputError,
    MediaNotFoundError,
    MediaTooLargeError,
    OutputError,
    ProcessingError,
    UnsupportedMediaError,
    VeilError,
)
from .atomic import atomic_output
from .interrupts import interrupts_deferred
from .orientation import Orientation, frame_orientation
from .video import _SWS_MATRIX, MAX_PIXELS, MAX_SIDE, _encoder, _encoder_options, _pix_fmt, _reason

__all__ = ["StreamOptions", "StreamStats", "anonymize_stream", "is_stream"]

log = logging.getLogger("veil")

#: URL schemes that are live streams whatever their path.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "rtp", "udp", "tcp", "srt", "rist"})
#: ``PREFIX:DEVICE`` -> FFmpeg input device format.
DEVICE_PREFIXES = {"v4l2": "v4l2", "video4linux2": "v4l2", "avfoundation": "avfoundation", "dshow": "dshow"}
#: Output container per file suffix (no .avi: it holds a constant frame rate only).
FILE_FORMATS = {
    ".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".ts": "mpegts", ".m2ts": "mpegts", ".flv": "flv",
}  # fmt: skip
#: Output container per URL scheme.
NETWORK_FORMATS = {
    "udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rist": "mpegts", "http": "mpegts", "https": "mpegts",
    "rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "flv", "rtmps": "flv",
}  # fmt: skip

_DEVICE_RE = re.compile(r"/dev/video\d+")
_HTTP_LIVE_RE = re.compile(r"(^|[/._-])live([/._-]|$)")
_TB = Fraction(1, 90000)  # output time base (MPEG-TS's own)
_MAX_GAP = 10.0  # s: a larger jump between source timestamps is a discontinuity
_MIN_STEP = 0.001  # s: smallest gap between two written frames (Matroska counts ms)
_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)  # s before reconnection attempt 1, 2, ... (then 8 s)
_POLL = 0.1  # s: how often waiting loops look at `stop` / the reader
_WATCHDOG = 5.0  # s beyond the reader's own deadline before it is declared stuck
_QUEUE_MAX = 120  # frames: queue cap for live sources (memory bound)
_NOT_LIVE_QUEUE = 8


# ----------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class StreamOptions:
    """How a live stream is read and written (see the module docstring for the policy)."""

    max_latency_s: float = 1.0  # frames that waited longer are dropped before processing (live)
    reconnect: int = 5  # reconnection attempts for network sources, with backoff; 0 = none
    stall_timeout_s: float = 10.0  # no data / no video frame for this long = connection lost
    output_format: Optional[str] = None  # container for dst (default: by scheme / suffix; '-' -> mpegts)
    live: Optional[bool] = None  # None: live unless stdin is a regular file or src is a file
    input_format: Optional[str] = None  # force a demuxer / device type ('mpegts', 'v4l2', ...)
    input_options: Mapping[str, str] = field(default_factory=dict, hash=False)  # FFmpeg options for the input

    def __post_init__(self) -> None:
        if not (isinstance(self.max_latency_s, (int, float)) and self.max_latency_s > 0):
            raise ConfigError(f"max_latency_s must be > 0, got {self.max_latency_s!r}")
        if not (isinstance(self.reconnect, int) and self.reconnect >= 0):
            raise ConfigError(f"reconnect must be an integer >= 0, got {self.reconnect!r}")
        if not (isinstance(self.stall_timeout_s, (int, float)) and self.stall_timeout_s > 0):
            raise ConfigError(f"stall_timeout_s must be > 0, got {self.stall_timeout_s!r}")
        if self.output_format is not None and self.output_format not in av.formats_available:
            raise ConfigError(f"unknown output format {self.output_format!r}")


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
    latency_max_s: float  # longest delay from decoding a frame to writing it
    latency_mean_s: float
    seconds: float  # wall time of the run
    ended: str  # "eof" (source ended), "stop", "interrupted" or "error"

    @property
    def dropped(self) -> int:
        return self.dropped_late + self.dropped_overflow + self.dropped_corrupt


def is_stream(spec: Union[str, Path]) -> bool:
    """True for what :func:`anonymize_stream` treats as a live source or sink.

    ``-`` (stdin/stdout), ``/dev/videoN``, ``v4l2:`` / ``avfoundation:`` / ``dshow:``
    devices, an existing named pipe, ``rtsp rtmp udp tcp srt rist rtp`` URLs, and
    ``http(s)`` URLs of HLS playlists (``.m3u8``) or with a ``live`` path component.
    A plain ``http(s)`` URL of a file is not a stream.
    """
    s = str(spec).strip()
    if s == "-" or _DEVICE_RE.fullmatch(s):
        return True
    prefix, sep, rest = s.partition(":")
    if sep and prefix.lower() in DEVICE_PREFIXES and not rest.startswith("//"):
        return True
    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    if scheme in LIVE_SCHEMES:
        return True
    if scheme in ("http", "https"):
        path = parts.path.lower()
        return path.endswith((".m3u8", ".m3u")) or bool(_HTTP_LIVE_RE.search(path))
    if len(scheme) <= 1:  # a path (or a Windows drive letter)
        with contextlib.suppress(OSError, ValueError):
            return stat.S_ISFIFO(os.stat(s).st_mode)
    return False


# ----------------------------------------------------------------------------- the run


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
    source = _parse_source(src, opts)
    sink = _parse_sink(dst, opts)
    codec = _encoder(cfg, sink.fmt)
    if cfg.start is not None or cfg.end is not None:
        log.warning("start/end do not apply to live streams; ignored")
    live = opts.live if opts.live is not None else source.live
    reader = _Reader(source, opts, live)
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


# ----------------------------------------------------------------------------- sources / sinks


@dataclass(frozen=True)
class _Source:
    kind: str  # "pipe" | "device" | "network" | "file"
    target: str  # what av.open gets ("" for a pipe read through `fd`)
    name: str  # for messages (no credentials)
    fmt: Optional[str]
    options: dict
    live: bool  # the default for StreamOptions.live
    fd: Optional[int] = None  # stdin
    path: Optional[str] = None  # a named pipe, opened in the reader thread


@dataclass(frozen=True)
class _Sink:
    kind: str  # "file" | "pipe" | "network"
    target: str  # path, "pipe:1" or URL
    name: str
    fmt: str
    options: dict  # container (muxer) options


def redact_url(url: str) -> str:
    """``url`` without user name and password (they must not reach logs or reports)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _have_format(name: str) -> bool:
    return any(name in f.split(",") for f in av.formats_available)


def _parse_source(src: Union[str, Path], opts: StreamOptions) -> _Source:
    s = str(src).strip()
    options = dict(opts.input_options)
    fmt = opts.input_format
    if s == "-":
        try:
            fd = sys.stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):
            raise InputError("stdin: not available to read a stream from") from None
        if os.isatty(fd):
            raise InputError("stdin is a terminal: pipe a video stream into it (e.g. ffmpeg ... -f mpegts -)")
        return _Source("pipe", "", "stdin", fmt, options, live=not stat.S_ISREG(mode), fd=fd)

    device_fmt, device = "", None
    if _DEVICE_RE.fullmatch(s):
        device_fmt, device = "v4l2", s
    else:
        prefix, sep, rest = s.partition(":")
        if sep and prefix.lower() in DEVICE_PREFIXES and not rest.startswith("//"):
            device_fmt, device = DEVICE_PREFIXES[prefix.lower()], rest
    if device is not None:
        fmt = fmt or device_fmt
        if not _have_format(fmt):
            raise UnsupportedMediaError(f"{s}: this FFmpeg build cannot read {fmt} devices")
        if fmt == "v4l2" and not os.path.exists(device):
            raise MediaNotFoundError(f"{device}: no such camera device")
        return _Source("device", device, s, fmt, options, live=True)

    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    if len(scheme) > 1:
        name = redact_url(s)
        if scheme in ("rtsp", "rtsps"):
            options.setdefault("rtsp_transport", "tcp")  # RTP over UDP loses packets -> damaged frames
        if scheme == "udp":
            options.setdefault("overrun_nonfatal", "1")  # a full receive buffer loses packets, not the stream
        return _Source("network", s, name, fmt, options, live=True)

    path = Path(s)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MediaNotFoundError(f"{s}: no such file, device or stream") from None
    except OSError as exc:
        raise InputError(f"{s}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISFIFO(mode):
        return _Source("pipe", "", s, fmt, options, live=True, path=s)
    if stat.S_ISREG(mode):
        return _Source("file", s, s, fmt, options, live=False)
    raise UnsupportedMediaError(f"{s}: not a stream, pipe or file")


def _parse_sink(dst: Union[str, Path], opts: StreamOptions) -> _Sink:
    s = str(dst).strip()
    fmt: Optional[str]  # given, or known from the scheme / suffix
    if s == "-":
        with contextlib.suppress(AttributeError, OSError, ValueError):
            if os.isatty(sys.stdout.fileno()):
                raise OutputError("stdout is a terminal: pipe it into a player or ffmpeg, or give an output file")
        fmt = opts.output_format or "mpegts"
        return _Sink("pipe", "pipe:1", "stdout", fmt, _live_muxer_options(fmt))
    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    if len(scheme) > 1:
        fmt = opts.output_format or NETWORK_FORMATS.get(scheme)
        if fmt is None:
            raise ConfigError(f"{redact_url(s)}: cannot stream to {scheme}://; use {', '.join(NETWORK_FORMATS)} or a file")
        target = s
        if scheme == "udp" and "pkt_size" not in parts.query:  # 7 TS packets a datagram, the usual
            target = _with_query(s, "pkt_size=1316")
        if scheme == "tcp" and "timeout" not in parts.query:  # a receiver that stops reading -> error
            target = _with_query(s, f"timeout={int(opts.stall_timeout_s * 1e6)}")
        options = _live_muxer_options(fmt)
        if fmt == "rtsp":
            options.setdefault("rtsp_transport", "tcp")
        return _Sink("network", target, redact_url(s), fmt, options)
    path = Path(s)
    fmt = opts.output_format or FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        suffix = path.suffix or "(no suffix)"
        raise ConfigError(f"{s}: unsupported output format {suffix!r}; use {', '.join(FILE_FORMATS)}")
    if path.is_dir():
        raise OutputError(f"output path is a directory: {s}")
    return _Sink("file", s, s, fmt, {})


def _with_query(url: str, item: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{item}" if parts.query else item
    return urlunsplit(parts._replace(query=query))


def _live_muxer_options(fmt: str) -> dict:
    return {"flush_packets": "1"} if fmt in ("mpegts", "flv") else {}


# ----------------------------------------------------------------------------- reader thread


class _Lost(Exception):
    """The source stopped delivering (stall, read error, end of a network stream)."""


class _Stalled(Exception):
    """A pipe gave no data for stall_timeout_s (raised inside PyAV's read callback)."""


_EOF = object()  # the source ended normally
_EMPTY = object()  # nothing arrived within the poll interval


class _FrameQueue:
    """Bounded FIFO between the reader and the calling thread.

    Live: ``put`` never blocks; when full the oldest frame is dropped. Not live: ``put``
    waits for room. ``finish`` posts the end (``_EOF`` or an exception), delivered once the
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
            return self._end if self._end is not None else _EMPTY

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


class _Reader:
    """Opens, demuxes and decodes the source in a daemon thread; reconnects network sources."""

    def __init__(self, source: _Source, opts: StreamOptions, live: bool):
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
            self.queue.finish(_EOF)
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
                raise _Lost(f"read failed ({_reason(exc)})") from None
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


def _open_error(src: _Source, exc: av.error.FFmpegError) -> InputError:
    reason = _reason(exc)
    if isinstance(exc, av.error.InvalidDataError):
        return CorruptMediaError(f"{src.name}: not a video stream veil can read ({reason})")
    if isinstance(exc, FileNotFoundError):
        return MediaNotFoundError(f"{src.name}: not found ({reason})")
    if isinstance(exc, av.error.ProtocolNotFoundError) or "protocol not found" in reason.lower():
        return UnsupportedMediaError(f"{src.name}: this FFmpeg build cannot read that protocol ({reason})")
    if isinstance(exc, (av.error.DemuxerNotFoundError, av.error.DecoderNotFoundError)):
        return UnsupportedMediaError(f"{src.name}: unsupported stream ({reason})")
    if isinstance(exc, OSError):
        return InputError(f"{src.name}: cannot connect ({reason})")
    return InputError(f"{src.name}: cannot open ({reason})")


# ----------------------------------------------------------------------------- calling thread


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
        self.encoder: Optional[_Encoder] = None
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
        with contextlib.suppress(_NothingWritten), atomic_output(dst) as tmp:
            out = _open_output(str(tmp), self.sink, dst.name)
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
                self.encoder.flush()
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
        out = _open_output(self.sink.target, self.sink, self.sink.name)
        try:
            try:
                self._pass(out, first)
            except BaseException as exc:
                if self._keepable(exc) and self.encoder is not None:
                    with contextlib.suppress(Exception):
                        self.encoder.flush()
                raise
            assert self.encoder is not None  # made by _pass
            self.encoder.flush()
        except BaseException:
            self._close(out, finish=False)
            raise
        self._close(out, finish=True)

    def _close(self, out, finish: bool) -> None:
        """Close the output (``finish``: write its trailer; raises OutputError if that fails),
        first noting how many frames it holds: the container's counters go with it."""
        if self.encoder is not None:
            self.muxed = self.encoder.vout.frames  # the muxer's count, one packet a frame
        if finish:
            _close_output(out, self.sink)
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
        self.encoder = _Encoder(out, self.sink, self.codec, self.cfg, self.width, self.height, self.reader.fps,
                                self.colors)  # fmt: skip
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
            if item is _EMPTY:
                # stuck: no progress by the reader's own deadline, while this thread waited too
                # (a long `process` call holding the GIL must not look like a stuck reader)
                if self.reader.stuck_for() > _WATCHDOG and time.monotonic() - waiting_since > _WATCHDOG:
                    self.pending = InputError(f"{self.source.name}: no data for over {stall:g} s (source stuck)")
                    self.ended = "error"
                    return None
                continue
            if item is _EOF:
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
            log.debug("%s: cannot convert a frame (%s); dropped", self.source.name, _reason(exc))
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
        shape = (self.height, self.width, 3)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != shape:
            got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise ProcessingError(f"{self.source.name}: process returned a {got} frame, expected uint8 {shape}")
        assert self.encoder is not None  # made by _pass before any frame
        self.encoder.encode(np.ascontiguousarray(arr), t)
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


# ----------------------------------------------------------------------------- encoding


def _open_output(target: str, sink: _Sink, shown: str):
    try:
        return av.open(target, "w", format=sink.fmt, container_options=sink.options)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise OutputError(f"{shown}: cannot write ({_reason(exc)})") from None


def _close_output(out, sink: _Sink) -> None:
    try:
        with interrupts_deferred():
            out.close()  # writes the trailer (mp4 index)
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{sink.name}: cannot finish writing ({_reason(exc)})") from None


class _Encoder:
    """RGB frames -> the output's video stream, timed in ``_TB`` units."""

    def __init__(self, out, sink: _Sink, codec: str, cfg: VideoConfig, width: int, height: int,
                 fps: Optional[Fraction], colors: dict):  # fmt: skip
        self.out, self.sink = out, sink
        rate = fps or Fraction(30)
        options = _encoder_options(codec, cfg)
        low_delay = sink.kind != "file"
        if low_delay and codec in ("libx264", "libx265"):
            options["tune"] = "zerolatency"
        if low_delay and codec == "libvpx-vp9":
            options.update({"deadline": "realtime", "lag-in-frames": "0"})
        try:
            self.vout = out.add_stream(codec, rate=rate, options=options)
        except (av.error.FFmpegError, ValueError) as exc:
            raise ConfigError(f"{sink.name}: cannot encode {codec} into {sink.fmt} ({_reason(exc)})") from None
        self.vout.width, self.vout.height = width, height
        self.vout.pix_fmt = self.pix_fmt = _pix_fmt(codec, width, height)
        self.tb = Fraction(1, 60000) if codec == "mpeg4" else _TB  # MPEG-4 part 2: at most 65535
        self.vout.time_base = self.tb
        cc = self.vout.codec_context
        cc.time_base = self.tb
        cc.thread_count = 0
        if low_delay:
            cc.gop_size = max(1, round(2 * rate))  # a keyframe every 2 s: viewers can join
        if codec == "mpeg4":
            cc.qscale = True
            cc.global_quality = max(1, min(31, round(cfg.crf / 4))) * 118  # FF_QP2LAMBDA
        for key, value in colors.items():
            if value not in (0, 2) or (key == "color_range" and value):
                with contextlib.suppress(AttributeError, ValueError, TypeError):
                    setattr(cc, key, value)
        self.dst_matrix = _SWS_MATRIX.get(colors.get("colorspace", 0))  # 0 (RGB) or absent: the encoder's default
        self.dst_range = colors.get("color_range") or None
        self.to_yuv = VideoReformatter()
        self.last_pts: Optional[int] = None

    def encode(self, arr: np.ndarray, t: float) -> None:
        rgb = av.VideoFrame.from_numpy_buffer(arr, format="rgb24")
        frame = self.to_yuv.reformat(
            rgb, format=self.pix_fmt, dst_colorspace=self.dst_matrix, dst_color_range=self.dst_range, threads=1
        )
        pts = round(t / self.tb)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        self.last_pts = pts
        frame.pts = pts
        frame.time_base = self.tb
        with interrupts_deferred():  # Ctrl-C between encode and mux would lose a packet
            self._mux(self._encode(frame))

    def flush(self) -> None:
        with interrupts_deferred():
            self._mux(self._encode(None))

    def _encode(self, frame) -> list:
        try:
            return self.vout.encode(frame)
        except av.error.FFmpegError as exc:
            raise ProcessingError(f"{self.sink.name}: video encoder failed ({_reason(exc)})") from None

    def _mux(self, packets) -> None:
        try:
            self.out.mux(packets)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write to {self.sink.name} ({_reason(exc)})") from None
