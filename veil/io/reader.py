"""Open a video file once: its :class:`VideoInfo` for everyone, then its frames, upright.

Before, one CLI run opened its input four times (the progress bar's probe, the API's, the
transcoder's, then the real pass) and decoded frame 0 at each. A :class:`VideoReader`
opens the file once: it decodes the first video frame to describe the stream (size as
displayed, orientation, colours), keeps it and every packet demuxed on the way, and its
:meth:`VideoReader.frames` starts with them. Whoever needs the description (a progress bar,
the report, the writer) gets the reader's ``info``.

* **Fail closed.** A file that cannot be opened, a demux/decode error, a packet or frame
  flagged corrupt, or a video stream that ends well before the duration its container
  declares (a truncated download, :meth:`VideoReader.check_complete`) raises
  CorruptMediaError. Sizes beyond MAX_SIDE / MAX_PIXELS raise MediaTooLargeError.
* **Trimming.** ``start``/``end`` are positions in seconds from the container's start, as
  with ``ffmpeg -ss``/``-to``. We seek to the keyframe before ``start`` and decode forward to
  the first frame at or after it; frames at or after ``end`` are dropped. Kept frames carry
  output pts rebased so that the first kept frame is at 0 (when ``start`` is given).
* **Timestamps** are the input's, in its time base, made strictly increasing where they are
  not; AVI stores decode order, so there they are sorted within a short window.
* **Rotation:** frames come in display orientation (see :mod:`veil.io.video` and
  :mod:`veil.io.orientation`); an orientation change that changes the frame's shape
  mid-video is refused (UnsupportedMediaError).
* **Overlap.** With ``ahead`` > 0, :meth:`VideoReader.frames` decodes and converts to RGB on
  its own thread, up to ``ahead`` frames before the caller (who detects meanwhile); errors
  arrive in order, after the frames before them, and closing the iterator stops the thread
  before the container can be closed.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import queue
import re
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import av
import av.error
import numpy as np

from ..errors import CorruptMediaError, InputError, MediaNotFoundError, MediaTooLargeError, UnsupportedMediaError
from .av_errors import reason
from .orientation import Orientation, frame_orientation

__all__ = ["VideoInfo", "VideoReader", "probe_video", "read_frames", "MAX_SIDE", "MAX_PIXELS"]

log = logging.getLogger("veil")

MAX_SIDE = 16384
MAX_PIXELS = 100_000_000
_AVI_REORDER = 8  # frames: deepest B-frame reordering expected in AVI files
_EPS = Fraction(1, 1_000_000)  # tolerance when comparing frame times with float seconds
_POLL = 0.1  # s: how often the read-ahead thread looks whether it should stop
# Byte signatures of containers: a file that starts like one but will not open is damaged.
_SIGNATURES = ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),
               (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"FLV"), (0, b"OggS"), (0, b"\x00\x00\x01\xba"))  # fmt: skip


@dataclass(frozen=True)
class VideoInfo:
    """What opening a video learns about it (its first video stream)."""

    width: int  # frame size as displayed (= as processed and written; exact, no macroblock padding)
    height: int
    fps: Optional[Fraction]  # average rate, exact (29.97 = 30000/1001); None if unknown
    time_base: Fraction
    duration_s: Optional[float]
    frames: Optional[int]  # estimate for progress bars, after start/end trimming
    rotation: int  # clockwise degrees a player (and veil) turns the stored frames for display: 0/90/180/270
    codec: str
    has_audio: bool
    mirrored: bool = False  # the display also mirrors the stored frames (before ``rotation``)


def probe_video(path: Path, *, start: Optional[float] = None, end: Optional[float] = None) -> VideoInfo:
    """Open ``path``, check it and describe its video stream (decodes the first frame).

    ``start``/``end`` (seconds) only change the ``frames`` estimate. To read the frames as
    well, use one :class:`VideoReader` (one open, frame 0 decoded once).

    Raises MediaNotFoundError, UnsupportedMediaError (not a video, no video stream),
    CorruptMediaError (empty, truncated, undecodable) or MediaTooLargeError.
    """
    with VideoReader(Path(path), start, end) as reader:
        return reader.info


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode every frame of a video as RGB uint8, in display orientation (for evaluation;
    anonymizing uses :func:`veil.io.video.transcode_video`). Decode errors raise CorruptMediaError."""
    path = Path(path)
    with _open_input(path) as inp:
        vin = _video_stream(inp, path)
        turn: Optional[Orientation] = None
        try:
            for frame in inp.decode(vin):
                turn = frame_orientation(frame, vin.metadata, turn)
                yield turn.apply(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{path}: cannot decode ({reason(exc)})") from None


class VideoReader:
    """One video file, opened once (a context manager): ``info``, then :meth:`frames`.

    ``audio`` (set by a writer before :meth:`frames`) gets the audio packets demuxed on the
    way: ``feed(packet) -> passed end``, and ``start(origin)`` at the first kept frame.
    """

    def __init__(self, path: Path, start: Optional[float] = None, end: Optional[float] = None, ahead: int = 0):
        self.src = Path(path)
        self.ahead = ahead
        self.inp = _open_input(self.src)
        try:
            self._probe(start, end)
        except BaseException:
            self.inp.close()
            raise
        self.audio: Any = None
        self.frames_in = 0
        self.shift: Optional[int] = None  # pts of the first kept frame when `start` is used, else 0
        self.first_out: Optional[int] = None
        self.last_pts: Optional[int] = None
        self.last_end: Optional[int] = None  # end of the last decoded frame (pts units)
        self.kept_end = 0  # end of the last kept frame, output pts units
        self.video_done = self.at_eof = False
        self._warned_pts = False

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.inp.close()

    # -- opening -----------------------------------------------------------------------------

    def _probe(self, start: Optional[float], end: Optional[float]) -> None:
        inp, path = self.inp, self.src
        self.vin = vin = _video_stream(inp, path)
        self.ain = (inp.streams.best("audio") or inp.streams.audio[0]) if inp.streams.audio else None
        self.tb = _time_base(vin, path)
        self.streams = [vin] + ([self.ain] if self.ain is not None else [])
        self.early: list = []  # audio packets and decoded video frames met while probing
        first = self._first_frame()
        self.packets = self._demux(self.streams)  # goes on where the probe stopped
        _check_size(first.width, first.height, path)
        self.turn = frame_orientation(first, vin.metadata)  # the last orientation seen (a frame may carry its own)
        width, height = self.turn.size(first.width, first.height)
        info = VideoInfo(
            width=width,
            height=height,
            fps=_rate(vin),
            time_base=self.tb,
            duration_s=_duration(inp, vin),
            frames=None,
            rotation=self.turn.rotation,
            codec=vin.codec_context.name,
            has_audio=bool(inp.streams.audio),
            mirrored=self.turn.mirrored,
        )
        self.info = dataclasses.replace(info, frames=_estimate_frames(info, vin.frames, start, end))
        self.colors = {k: getattr(first, k) for k in ("colorspace", "color_range", "color_primaries", "color_trc")}
        rate = self.info.fps
        self.step = max(1, round(1 / (rate * self.tb))) if rate else 1  # one frame, in time-base units
        origin = Fraction(inp.start_time or 0, 1_000_000)  # seconds count from the container start
        self.lo = origin + Fraction(start) if start else None
        self.hi = origin + Fraction(end) if end is not None else None

    def _first_frame(self) -> av.VideoFrame:
        """Decode up to the first video frame, keeping what came on the way for :meth:`frames`."""
        try:
            for packet in self.inp.demux(*self.streams):
                if packet.is_corrupt:
                    break
                if packet.stream.index != self.vin.index:
                    self.early.append(packet)
                    continue
                frames = [f for f in packet.decode() if isinstance(f, av.VideoFrame)]
                self.early.extend(frames)
                if frames:
                    return frames[0]
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{self.src}: cannot decode the first video frame ({reason(exc)})") from None
        raise CorruptMediaError(f"{self.src}: no decodable video frame")

    # -- reading -----------------------------------------------------------------------------

    def frames(self) -> Generator[tuple[np.ndarray, int], None, None]:
        """RGB uint8 frames (display orientation, C-contiguous) between start and end, each
        with its output pts (time-base units); on its own thread with ``ahead`` > 0."""
        frames = self._frames()
        return _read_ahead(frames, self.ahead) if self.ahead > 0 else frames

    def _frames(self) -> Generator[tuple[np.ndarray, int], None, None]:
        for frame, pts in self._kept_frames():
            self.frames_in += 1
            yield self._upright(frame), pts

    def _seek(self) -> None:
        """Go to the keyframe before ``start`` (the frames decoded while probing are dropped)."""
        assert self.lo is not None  # only called with a start
        try:
            self.inp.seek(math.floor(self.lo / self.tb), stream=self.vin, backward=True)
        except av.error.FFmpegError as exc:
            log.debug("%s: seek failed (%s); decoding from the beginning", self.src, reason(exc))
            return  # the demuxer has not moved: go on from where the probe stopped
        self.early = []
        self.packets = self._demux(self.streams)

    def _demux(self, streams) -> Iterator[av.Packet]:
        packets = self.inp.demux(*streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                raise CorruptMediaError(f"{self.src}: cannot read ({reason(exc)}); nothing written") from None
            if packet.is_corrupt:
                at = f" at {float(packet.pts * packet.time_base):.2f} s" if packet.pts is not None else ""
                raise CorruptMediaError(f"{self.src}: damaged or truncated data{at}; nothing written")
            yield packet

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            frames = packet.decode()
        except av.error.EOFError:
            if packet.size == 0:  # the flush packet of a decoder drained already (a short file, read to its end
                return []  # while frame 0 was probed): no frame is left, none is lost
            raise CorruptMediaError(f"{self.src}: cannot decode video (unexpected end of data); nothing written") from None
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{self.src}: cannot decode video ({reason(exc)}); nothing written") from None
        for frame in frames:
            if frame.is_corrupt:
                at = float(frame.time or 0)
                raise CorruptMediaError(f"{self.src}: damaged video frame at {at:.2f} s; nothing written")
        return frames

    def _feed_audio(self, packet: av.Packet) -> bool:
        return self.audio.feed(packet) if self.audio is not None else False

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Every decoded video frame; audio packets met on the way go to the audio writer."""
        if self.lo is not None:
            self._seek()
        early, self.early = self.early, []
        for item in early:
            if isinstance(item, av.Packet):
                self._feed_audio(item)
            elif item.is_corrupt:
                raise CorruptMediaError(f"{self.src}: damaged video frame at {float(item.time or 0):.2f} s; nothing written")
            else:
                yield item
        for packet in self.packets:
            if packet.stream.index != self.vin.index:
                self._feed_audio(packet)
                continue
            yield from self._decode(packet)
        self.at_eof = True

    def _timed(self) -> Iterator[tuple[av.VideoFrame, int]]:
        """Decoded frames with their pts.

        AVI stores no presentation times: with B-frames, decoded frames carry decode-order
        numbers, which are a permutation of the right ones, so there they are sorted within
        a short window.
        """
        depth = _AVI_REORDER if "avi" in self.inp.format.name.split(",") else 0
        window: deque[av.VideoFrame] = deque()
        heap: list[int] = []
        for frame in self._decoded():
            window.append(frame)
            if frame.pts is not None:
                heapq.heappush(heap, frame.pts)
            if len(window) > depth:
                yield self._stamped(window.popleft(), heap)
        while window:
            yield self._stamped(window.popleft(), heap)

    def _stamped(self, frame: av.VideoFrame, heap: list[int]) -> tuple[av.VideoFrame, int]:
        return frame, self._pts(heapq.heappop(heap) if frame.pts is not None else None)

    def _pts(self, pts: Optional[int]) -> int:
        """Make timestamps strictly increasing (encoders require it) where the input's are not."""
        if self.last_pts is not None and (pts is None or pts <= self.last_pts):
            if not self._warned_pts:
                log.warning("%s: missing or non-increasing timestamps; numbering frames", self.src)
                self._warned_pts = True
            pts = self.last_pts + self.step
        elif pts is None:
            pts = 0
        self.last_pts = pts
        return pts

    def _kept_frames(self) -> Iterator[tuple[av.VideoFrame, int]]:
        """Decoded frames between start and end, with their output pts."""
        for frame, pts in self._timed():
            t = pts * self.tb
            self.last_end = pts + (frame.duration or self.step)
            if self.lo is not None and t < self.lo - _EPS:
                continue
            if self.hi is not None and t >= self.hi - _EPS:
                break
            if self.shift is None:
                self.shift = pts if self.lo is not None else 0
                self.first_out = pts - self.shift
                if self.audio is not None:
                    self.audio.start(self.shift * self.tb if self.lo is not None else None)
            self.kept_end = self.last_end - self.shift
            yield frame, pts - self.shift
        self.video_done = True


    def _upright(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame as RGB in display orientation (see the module docstring)."""
        turn = frame_orientation(frame, self.vin.metadata, self.turn)  # a frame without a matrix keeps the last
        if turn != self.turn:
            if turn.size(frame.width, frame.height) != (self.info.width, self.info.height):
                at = float(frame.time or 0)
                raise UnsupportedMediaError(
                    f"{self.src}: display orientation changes at {at:.2f} s ({self.turn.describe()} -> "
                    f"{turn.describe()}), which changes the frame's shape; nothing written"
                )
            log.warning("%s: display orientation changes at %.2f s (%s)", self.src, float(frame.time or 0), turn.describe())
            self.turn = turn
        rgb = frame.to_ndarray(format="rgb24", threads=1)
        return np.ascontiguousarray(turn.apply(rgb))

    def drain_audio(self) -> None:
        """After the video stopped at ``end``, read on until the audio reaches ``end`` too."""
        if self.at_eof or self.audio is None:
            return
        for packet in self.packets:
            if packet.stream.index == self.audio.ain.index and self.audio.feed(packet):
                break

    def check_complete(self) -> None:
        """Fail closed on a video that stops well before its declared end (truncated file)."""
        declared = _declared_end(self.vin)
        if not self.at_eof or declared is None or self.last_end is None:
            return
        got = self.last_end * self.tb
        if declared - got > 2 * self.step * self.tb + Fraction(1, 20):
            raise CorruptMediaError(
                f"{self.src}: video stops at {float(got):.2f} s but the file says {float(declared):.2f} s "
                "(truncated?); nothing written"
            )


# ----------------------------------------------------------------------------- opening


def _open_input(path: Path) -> av.container.InputContainer:
    """av.open with veil's errors; the caller closes it (use ``with``)."""
    if not path.exists():
        raise MediaNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise UnsupportedMediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CorruptMediaError(f"{path}: empty file")
    try:
        inp = av.open(str(path), metadata_errors="replace")
    except PermissionError:  # (av's is an FFmpegError too: before the sniffing below re-opens the file)
        raise InputError(f"{path}: permission denied") from None
    except av.error.FFmpegError as exc:
        why = reason(exc)
        if _looks_like_video(path):
            raise CorruptMediaError(f"{path}: damaged or truncated video file ({why})") from None
        raise UnsupportedMediaError(f"{path}: not a video file veil can read ({why})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if inp.format.name in ("tty", "image2", "lavfi"):
        inp.close()
        raise UnsupportedMediaError(f"{path}: not a video file (looks like {inp.format.name})")
    return inp


def _looks_like_video(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(12)
    return any(head[i : i + len(sig)] == sig for i, sig in _SIGNATURES)


def _video_stream(inp: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not inp.streams.video:
        raise UnsupportedMediaError(f"{path}: no video stream")
    best = inp.streams.best("video")
    vin = best if isinstance(best, av.video.stream.VideoStream) else inp.streams.video[0]
    cc = vin.codec_context
    if cc is None or vin.codec_context.name in ("", None):
        raise UnsupportedMediaError(f"{path}: no decoder for its video codec")
    _check_size(cc.width, cc.height, path)
    vin.thread_type = "AUTO"
    return vin


def _time_base(vin: av.video.stream.VideoStream, path: Path) -> Fraction:
    if vin.time_base is None:  # FFmpeg gives every demuxed stream one
        raise UnsupportedMediaError(f"{path}: video stream without a time base")
    return Fraction(vin.time_base)


def _check_size(width: int, height: int, path: Path) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise MediaTooLargeError(
            f"{path}: video is {width}x{height}; veil refuses more than {MAX_SIDE} px a side "
            f"or {MAX_PIXELS // 1_000_000} Mpixel"
        )


def _rate(vin) -> Optional[Fraction]:
    rate = vin.average_rate or vin.guessed_rate
    return Fraction(rate) if rate else None


def _duration(inp, vin) -> Optional[float]:
    if vin.duration:
        return float(vin.duration * vin.time_base)
    if inp.duration:
        return inp.duration / 1_000_000
    return None


def _estimate_frames(info: VideoInfo, vin_frames: int, start, end) -> Optional[int]:
    if not start and end is None and vin_frames:
        return vin_frames
    if info.fps is None or info.duration_s is None:
        return None
    stop = info.duration_s if end is None else min(end, info.duration_s)
    return max(0, round((stop - (start or 0.0)) * info.fps))


def _declared_end(vin) -> Optional[Fraction]:
    """Where the container says the video stream ends (seconds), to spot truncated files."""
    if vin.duration and vin.start_time is not None:
        return (vin.start_time + vin.duration) * vin.time_base
    tag = vin.metadata.get("DURATION") or vin.metadata.get("duration")  # Matroska: end time
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", (tag or "").strip())
    if m:
        h, mi, s = m.groups()
        return Fraction(int(h) * 3600 + int(mi) * 60) + Fraction(s)
    return None


def _read_ahead(frames: Generator, depth: int) -> Generator:
    """``frames``, produced on a thread up to ``depth`` items ahead of the caller.

    The caller's thread gets the items in order and then the end or the producer's error.
    Closing the result (or an exception in the caller, which closes it) stops the producer
    and waits for it: the container it reads is never closed under it."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop, done = threading.Event(), threading.Event()  # `done`, not join(): see veil.io.background
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in frames:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the caller, in order
            put((end, exc))
        finally:
            try:
                frames.close()
            finally:
                done.set()

    thread = threading.Thread(target=produce, name="veil-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        interrupted: Optional[BaseException] = None
        while not done.is_set():  # a frame being decoded: wait for it, even through Ctrl-C
            try:
                done.wait(_POLL)
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
