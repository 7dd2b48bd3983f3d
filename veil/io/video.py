"""Read a video, pass its frames through the anonymizer, write the result; lose nothing else.

Why it works the way it does:

* Frames reach ``process`` as RGB uint8 arrays (C-contiguous), one output frame per input
  frame, in order. ``process`` may buffer (batching, look-ahead), so every decoded frame's
  timestamp waits in a FIFO and is given to the output frame that comes out next. Each frame
  is encoded with its original pts in the input's time base, so the frame rate, variable
  frame rate and A/V sync survive as they were; with ``start`` video and audio are rebased so
  that the first kept frame is at 0. (.mkv/.webm store milliseconds: that is all they keep;
  .avi holds a constant frame rate only, so there times are rounded to its frame grid.)
* ``start``/``end`` are positions in seconds from the container's start, as with ``ffmpeg
  -ss``/``-to`` (``start=0`` trims nothing). We seek to the keyframe before ``start`` and
  decode forward to the first frame at or after it; frames at or after ``end`` are dropped.
* Exact size: 4:2:0 chroma needs even sides, so odd sizes are encoded as yuv444p (no
  padding, no scaling; mpeg4 takes odd 4:2:0 as is). Some hardware players cannot play
  H.264/HEVC 4:4:4; software players (ffmpeg, VLC, browsers' software path) can.
  Colours: the input's matrix and range are used both ways and tagged on the output.
* Rotation: every frame reaches ``process`` in *display orientation*, the way players show
  it. Phones store most clips sideways and tag them with a display matrix (90/180/270
  degrees, possibly mirrored) or, in older files, a ``rotate`` tag; in the stored pixels an
  upright face lies on its side, where detectors miss most of them (issue #10: a portrait
  clip leaked faces in up to 59 of 60 frames). Each frame is turned by its display matrix
  (else the last one seen, or the ``rotate`` tag; H.264 display-orientation SEI comes on
  keyframes only) before ``process`` (:mod:`veil.io.orientation`), so detection, head
  growth (upward on screen), tracking and the report's boxes are all in the frame the
  viewer sees. A matrix that is not a
  right-angle turn, or one that changes the frame's shape mid-video, is refused
  (UnsupportedMediaError). The output is written *upright, without a display matrix*: it
  then plays the same in every player and container (.avi cannot hold a matrix; some
  players, editors and upload pipelines ignore or strip it), and its pixels are the ones
  the report's boxes refer to. Rotating back and re-tagging would cost a second turn per
  frame and keep a tag whose loss would show the result sideways. ``VideoInfo`` gives the
  display size, and the turn applied (``rotation`` clockwise, ``mirrored``).
* Audio is stream-copied (bit-exact) when the output container can hold its codec, else
  re-encoded to AAC (Opus for .webm, which cannot hold AAC). With ``start``/``end`` the
  audio is decoded, cut to the sample at the video's first kept frame and at ``end``, and
  re-encoded (the encoder pads its last frame: AAC may run up to 23 ms long). Stream copy
  could only cut at packet edges, and AAC priming makes such cuts imprecise.
  Container metadata, subtitles, data streams and extra tracks are not copied: they can
  carry GPS positions, names and other identifying details.
* Fail closed: a file that cannot be opened, a demux/decode error, a packet or frame flagged
  corrupt, or a video stream that ends well before the duration its container declares
  (a truncated download) raises CorruptMediaError and nothing is written. The frames decoded
  before the damage could have been anonymized, but a silently shortened output is easy to
  mistake for a complete one. No frame reaches the output without passing through ``process``.
* Encoding runs on its own thread (:mod:`veil.io.background`), so that it overlaps the
  detection of the next frames; each frame is converted to the encoder's YUV (a copy) on the
  calling thread before it is queued, so ``process`` may reuse its output buffers. An
  encoder or muxer error is raised at the next frame, and the thread is stopped before the
  container is closed.
* All or nothing: output goes to a temporary file next to ``dst`` that is renamed over it
  on success and deleted on any exception (KeyboardInterrupt and errors raised inside
  ``process`` included); see :mod:`veil.io.atomic`.

Speed, pedestrians_1080p.mp4 (105 frames 1920x1080 + AAC), identity ``process``, 2 shared
cores (load 5-6), 3 alternating runs each, whole process: transcode_video 8.3-9.1 s wall,
5.7-6.0 s CPU; ``ffmpeg -c:v libx264 -preset veryfast -crf 20 -c:a copy`` 6.3-7.5 s, 4.9-5.1 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import av.error
from av.video.reformatter import VideoReformatter
import numpy as np

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
)
from .atomic import atomic_output
from .background import Background
from .orientation import Orientation, frame_orientation

__all__ = ["VideoInfo", "VideoStats", "probe_video", "transcode_video", "decode_video", "MAX_SIDE", "MAX_PIXELS"]

log = logging.getLogger("veil")

MAX_SIDE = 16384
MAX_PIXELS = 100_000_000

#: Output container per ``dst`` suffix.
FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
#: Accepted ``VideoConfig.codec`` values -> FFmpeg encoder.
CODECS = {
    "libx264": "libx264", "h264": "libx264", "x264": "libx264",
    "libx265": "libx265", "hevc": "libx265", "h265": "libx265", "x265": "libx265",
    "libvpx-vp9": "libvpx-vp9", "vp9": "libvpx-vp9",
    "mpeg4": "mpeg4",
}  # fmt: skip
X26X_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
_VP9_CPU_USED = {"ultrafast": 5, "superfast": 5, "veryfast": 4, "faster": 4, "fast": 3, "medium": 2, "slow": 1}
_ENCODE_QUEUE = 8  # frames waiting for the encoder thread (memory: 8 YUV frames)
# the encoder runs beside detection (its own thread): half the cores each. libx264's own
# choice (1.5 x cores) made the two fight: OTB Boy, 2 cores, every 3rd frame 5.43 -> 4.90 s
_ENCODER_THREADS = max(1, (os.cpu_count() or 2) // 2)
_AVI_REORDER = 8  # frames: deepest B-frame reordering expected in AVI files
_EPS = Fraction(1, 1_000_000)  # tolerance when comparing frame times with float seconds
# AVColorSpace -> swscale matrix (SWS_CS_*); others use swscale's default (BT.601).
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
# Byte signatures of containers: a file that starts like one but will not open is damaged.
_SIGNATURES = ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),
               (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"FLV"), (0, b"OggS"), (0, b"\x00\x00\x01\xba"))  # fmt: skip


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video (its first video stream)."""

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


@dataclass(frozen=True)
class VideoStats:
    """What :func:`transcode_video` did."""

    frames_in: int
    frames_out: int
    width: int
    height: int
    fps: Optional[Fraction]
    duration_s: float  # of the video written
    audio_copied: bool  # the output carries the input's audio (stream copy or re-encoded)
    seconds: float  # wall time
    audio_reencoded: bool = False  # the audio had to be re-encoded (trimming, container)


@dataclass(frozen=True)
class _Source:
    """Probe results, plus what the writer needs that VideoInfo does not show."""

    info: VideoInfo
    orientation: Orientation  # how stored frames are turned for display (see veil.io.orientation)
    colors: dict  # colorspace / color_range / color_primaries / color_trc of the first frame


# ----------------------------------------------------------------------------- probing


def probe_video(path: Path, *, start: Optional[float] = None, end: Optional[float] = None) -> VideoInfo:
    """Open ``path``, check it and describe its video stream (decodes the first frame).

    ``start``/``end`` (seconds) only change the ``frames`` estimate.

    Raises MediaNotFoundError, UnsupportedMediaError (not a video, no video stream),
    CorruptMediaError (empty, truncated, undecodable) or MediaTooLargeError.
    """
    return _probe(Path(path), start, end).info


def _probe(path: Path, start: Optional[float], end: Optional[float]) -> _Source:
    with _open_input(path) as inp:
        vin = _video_stream(inp, path)
        first = _first_frame(inp, vin, path)
        _check_size(first.width, first.height, path)
        turn = frame_orientation(first, vin.metadata)
        width, height = turn.size(first.width, first.height)
        info = VideoInfo(
            width=width,
            height=height,
            fps=_rate(vin),
            time_base=_time_base(vin, path),
            duration_s=_duration(inp, vin),
            frames=None,
            rotation=turn.rotation,
            codec=vin.codec_context.name,
            has_audio=bool(inp.streams.audio),
            mirrored=turn.mirrored,
        )
        colors = {k: getattr(first, k) for k in ("colorspace", "color_range", "color_primaries", "color_trc")}
        frames = _estimate_frames(info, vin.frames, start, end)
    return _Source(dataclasses.replace(info, frames=frames), turn, colors)


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode every frame of a video as RGB uint8, in display orientation (for evaluation;
    anonymizing uses :func:`transcode_video`). Decode errors raise CorruptMediaError."""
    path = Path(path)
    with _open_input(path) as inp:
        vin = _video_stream(inp, path)
        turn: Optional[Orientation] = None
        try:
            for frame in inp.decode(vin):
                turn = frame_orientation(frame, vin.metadata, turn)
                yield turn.apply(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{path}: cannot decode ({_reason(exc)})") from None


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
        reason = _reason(exc)
        if _looks_like_video(path):
            raise CorruptMediaError(f"{path}: damaged or truncated video file ({reason})") from None
        raise UnsupportedMediaError(f"{path}: not a video file veil can read ({reason})") from None
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


def _first_frame(inp, vin, path: Path) -> av.VideoFrame:
    try:
        for packet in inp.demux(vin):
            if packet.is_corrupt:
                break
            for frame in packet.decode():
                return frame
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(f"{path}: cannot decode the first video frame ({_reason(exc)})") from None
    raise CorruptMediaError(f"{path}: no decodable video frame")


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


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


# ----------------------------------------------------------------------------- settings


def _container_format(dst: Path) -> str:
    fmt = FORMATS.get(dst.suffix.lower())
    if fmt is None:
        suffix = dst.suffix or "(no suffix)"
        raise ConfigError(f"{dst}: unsupported video output format {suffix!r}; use {', '.join(FORMATS)}")
    return fmt


def _encoder(cfg: VideoConfig, fmt: str) -> str:
    codec = CODECS.get(cfg.codec.lower())
    if codec is None:
        raise ConfigError(f"unknown video codec {cfg.codec!r}; use one of libx264, libx265, libvpx-vp9, mpeg4")
    if fmt == "webm" and codec != "libvpx-vp9":
        log.warning("%s cannot go in .webm; encoding with libvpx-vp9", codec)
        codec = "libvpx-vp9"
    if codec not in av.codecs_available:
        raise ConfigError(f"video codec {codec} is not available in this FFmpeg build")
    if codec in ("libx264", "libx265") and _preset(cfg) not in X26X_PRESETS:
        raise ConfigError(f"unknown encoder preset {_preset(cfg)!r} for {codec}; use one of {', '.join(X26X_PRESETS)}")
    return codec


def _preset(cfg: VideoConfig) -> str:
    """The encoder speed preset (``encoder_preset``; older configs called it ``preset``)."""
    return getattr(cfg, "encoder_preset", None) or getattr(cfg, "preset", None) or "veryfast"


def _encoder_options(codec: str, cfg: VideoConfig) -> dict[str, str]:
    if codec in ("libx264", "libx265"):
        opts = {"crf": str(cfg.crf), "preset": _preset(cfg)}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        return opts
    if codec == "libvpx-vp9":  # constant quality; VP9's crf scale is 0..63
        cpu_used = _VP9_CPU_USED.get(_preset(cfg), 0)
        crf = min(63, round(cfg.crf * 1.5))  # x264's 20 looks about like VP9's 30
        return {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": str(cpu_used), "row-mt": "1"}
    return {}  # mpeg4: fixed quantizer, set on the codec context


def _pix_fmt(codec: str, width: int, height: int) -> str:
    if codec == "mpeg4" or (width % 2 == 0 and height % 2 == 0):
        return "yuv420p"
    return "yuv444p"  # 4:2:0 cannot hold odd sizes exactly


def _check_trim(cfg: VideoConfig) -> None:
    if cfg.start is not None and cfg.end is not None and cfg.end <= cfg.start:
        raise ConfigError(f"end ({cfg.end} s) must be after start ({cfg.start} s)")


# ----------------------------------------------------------------------------- writing


def transcode_video(
    src: Path,
    dst: Path,
    process: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]],
    cfg: VideoConfig,
    on_frame: Optional[Callable[[int], None]] = None,
    replace: bool = True,
) -> VideoStats:
    """Decode ``src``, run its frames through ``process``, encode them to ``dst``.

    ``process`` gets an iterator of RGB uint8 frames (H x W x 3, C-contiguous) and must yield
    exactly one frame of the same shape per input frame, in order (it may read ahead).
    ``on_frame(n)`` is called after the n-th frame is written. ``dst``'s suffix picks the
    container (.mp4 .mov .mkv .webm .avi). See the module docstring for what is kept.
    ``replace=False``: never replace an existing ``dst``, even one that appeared meanwhile.

    Raises ConfigError (settings), InputError subclasses (the input), OutputError (cannot
    write), ProcessingError (``process`` broke its contract, or encoding failed), and
    re-raises whatever ``process`` raises. In every case nothing is left at ``dst``.
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    fmt = _container_format(dst)
    codec = _encoder(cfg, fmt)
    _check_trim(cfg)
    source = _probe(src, cfg.start, cfg.end)
    with atomic_output(dst, replace=replace) as tmp:
        with _open_input(src) as inp, _open_output(tmp, fmt, dst) as out:
            job = _Transcoder(src, inp, out, source, cfg, codec, fmt)
            job.run(process, on_frame)
        stats = job.stats(time.perf_counter() - t0)
    log.info(
        "%s -> %s: %d frames %dx%d, %.1f s of video, audio %s, %.1f s",
        src.name, dst.name, stats.frames_out, stats.width, stats.height, stats.duration_s,
        "re-encoded" if stats.audio_reencoded else "copied" if stats.audio_copied else "none", stats.seconds,
    )  # fmt: skip
    return stats


def decode_video(src: Path, cfg: VideoConfig) -> Iterator[tuple[np.ndarray, float]]:
    """The frames :func:`transcode_video` would hand ``process`` (same trimming, same order),
    each with its presentation time in seconds as written to an output, without writing one:
    analysis (``veil analyze``) needs the frames and their time table, not an encode."""
    src = Path(src)
    _check_trim(cfg)
    source = _probe(src, cfg.start, cfg.end)
    with _open_input(src) as inp:
        job = _Transcoder(src, inp, None, source, cfg, "", "")
        for arr in job._frames():
            yield arr, float(job.fifo.popleft() * job.tb)
        job._check_complete()
    if job.frames_in == 0:
        raise ConfigError(f"{src}: no video frames between start and end")


@contextlib.contextmanager
def _open_output(tmp: Path, fmt: str, dst: Path) -> Iterator[av.container.OutputContainer]:
    try:
        out = av.open(str(tmp), "w", format=fmt)
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{dst}: cannot write ({_reason(exc)})") from None
    try:
        yield out
    except BaseException:
        with contextlib.suppress(Exception):
            out.close()
        raise
    try:
        out.close()  # writes the trailer (mp4 index)
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{dst}: cannot finish writing ({_reason(exc)}); nothing written") from None


class _Transcoder:
    """One pass over the input: demux, decode, trim, process, encode, mux."""

    def __init__(self, src: Path, inp, out, source: _Source, cfg: VideoConfig, codec: str, fmt: str):
        self.src, self.inp, self.out, self.info = src, inp, out, source.info
        self.turn = source.orientation  # the last display orientation seen (a frame may carry its own)
        self.vin = _video_stream(inp, src)
        self.tb = _time_base(self.vin, src)
        rate = self.info.fps
        self.step = max(1, round(1 / (rate * self.tb))) if rate else 1  # one frame, in time-base units
        origin = Fraction(inp.start_time or 0, 1_000_000)  # seconds count from the container start
        self.lo = origin + Fraction(cfg.start) if cfg.start else None
        self.hi = origin + Fraction(cfg.end) if cfg.end is not None else None
        if out is not None:  # None: decode only (decode_video)
            self.vout = _add_video_stream(out, codec, source, cfg, fmt, self.tb)
            self.pix_fmt = self.vout.codec_context.pix_fmt
            self.enc_tb = Fraction(self.vout.codec_context.time_base)
        self.dst_matrix = _SWS_MATRIX.get(source.colors["colorspace"])
        self.dst_range = source.colors["color_range"] or None
        self.to_yuv = VideoReformatter()  # one scaler context for all frames
        self.mux_lock = threading.Lock()
        self.encoder: Optional[Background] = None  # set for the pass
        self.audio = _add_audio(inp, out, cfg, fmt, self.lo, self.hi, self._mux, src) if out is not None else None
        streams = [self.vin] + ([self.audio.ain] if self.audio else [])
        self._seek()
        self.packets = self._demux(streams)
        self.fifo: deque[int] = deque()  # output pts of frames handed to `process`, not yet back
        self.frames_in = self.frames_out = 0
        self.shift: Optional[int] = None  # pts of the first kept frame when `start` is used, else 0
        self.first_out: Optional[int] = None
        self.last_pts: Optional[int] = None
        self.last_end: Optional[int] = None  # end of the last decoded frame (pts units)
        self.kept_end = 0  # end of the last kept frame, output pts units
        self.last_enc_pts: Optional[int] = None
        self.video_done = self.at_eof = False
        self._warned_pts = False

    # -- the pass --------------------------------------------------------------------------

    def run(self, process, on_frame) -> None:
        frames = self._frames()
        try:
            with Background(depth=_ENCODE_QUEUE, name="veil-encoder") as self.encoder:
                for arr in process(frames):
                    self._write(arr)
                    if on_frame is not None:
                        on_frame(self.frames_out)
                if not self.video_done and next(frames, None) is not None:
                    raise ProcessingError(f"{self.src}: process stopped reading frames before the end; nothing written")
                self.encoder.finish()
        finally:
            frames.close()
        if self.fifo:
            raise ProcessingError(
                f"{self.src}: process returned {self.frames_out} frames for {self.frames_in}; nothing written"
            )
        if self.frames_in == 0:
            length = f"{self.info.duration_s:.2f} s" if self.info.duration_s else "shorter"
            raise ConfigError(f"{self.src}: no video frames between start and end (the video is {length})")
        self._check_complete()
        self._mux(self._encode(None))
        if self.audio is not None:
            self._drain_audio()
            self.audio.finish()

    def stats(self, seconds: float) -> VideoStats:
        return VideoStats(
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            width=self.info.width,
            height=self.info.height,
            fps=self.info.fps,
            duration_s=float((self.kept_end - (self.first_out or 0)) * self.tb),
            audio_copied=self.audio is not None and self.audio.written,
            seconds=seconds,
            audio_reencoded=self.audio is not None and self.audio.written and self.audio.reencoded,
        )

    # -- reading ---------------------------------------------------------------------------

    def _seek(self) -> None:
        if self.lo is None:
            return
        try:
            self.inp.seek(math.floor(self.lo / self.tb), stream=self.vin, backward=True)
        except av.error.FFmpegError as exc:
            log.debug("%s: seek failed (%s); decoding from the beginning", self.src, _reason(exc))

    def _demux(self, streams) -> Iterator[av.Packet]:
        packets = self.inp.demux(*streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                raise CorruptMediaError(f"{self.src}: cannot read ({_reason(exc)}); nothing written") from None
            if packet.is_corrupt:
                at = f" at {float(packet.pts * packet.time_base):.2f} s" if packet.pts is not None else ""
                raise CorruptMediaError(f"{self.src}: damaged or truncated data{at}; nothing written")
            yield packet

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{self.src}: cannot decode video ({_reason(exc)}); nothing written") from None
        for frame in frames:
            if frame.is_corrupt:
                at = float(frame.time or 0)
                raise CorruptMediaError(f"{self.src}: damaged video frame at {at:.2f} s; nothing written")
        return frames

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Every decoded video frame; audio packets met on the way go to the audio writer."""
        for packet in self.packets:
            if packet.stream.index != self.vin.index:
                assert self.audio is not None  # only the audio writer's stream is demuxed besides the video
                self.audio.feed(packet)
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

    def _frames(self) -> Generator[np.ndarray, None, None]:
        for frame, pts in self._kept_frames():
            arr = self._upright(frame)
            self.fifo.append(pts)
            self.frames_in += 1
            yield arr

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

    def _drain_audio(self) -> None:
        """After the video stopped at ``end``, read on until the audio reaches ``end`` too."""
        if self.at_eof or self.audio is None:
            return
        for packet in self.packets:
            if packet.stream.index == self.audio.ain.index and self.audio.feed(packet):
                break

    def _check_complete(self) -> None:
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

    # -- writing ---------------------------------------------------------------------------

    def _write(self, arr) -> None:
        if not self.fifo:
            raise ProcessingError(f"{self.src}: process returned more frames than it was given; nothing written")
        pts = self.fifo.popleft()
        rgb = av.VideoFrame.from_numpy_buffer(self._checked(arr), format="rgb24")  # no copy
        frame = self.to_yuv.reformat(
            rgb, format=self.pix_fmt, dst_colorspace=self.dst_matrix, dst_color_range=self.dst_range, threads=1
        )
        frame.pts = self._enc_pts(pts)
        frame.time_base = self.enc_tb
        assert self.encoder is not None, "frames are written during run()"
        self.encoder.submit(self._encode_and_mux, frame)  # overlaps the next frame's detection
        self.frames_out += 1

    def _encode_and_mux(self, frame: Optional[av.VideoFrame]) -> None:
        self._mux(self._encode(frame))

    def _checked(self, arr) -> np.ndarray:
        shape = (self.info.height, self.info.width, 3)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != shape:
            got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            msg = f"process returned a {got} frame, expected uint8 {shape}"
            raise ProcessingError(f"{self.src}: {msg}; nothing written")
        return np.ascontiguousarray(arr)

    def _enc_pts(self, pts: int) -> int:
        if self.enc_tb != self.tb:  # .avi or mpeg4: see _encoder_time_base
            pts = round(pts * self.tb / self.enc_tb)
            if self.last_enc_pts is not None and pts <= self.last_enc_pts:
                pts = self.last_enc_pts + 1
        self.last_enc_pts = pts
        return pts

    def _encode(self, frame: Optional[av.VideoFrame]) -> list[av.Packet]:
        try:
            return self.vout.encode(frame)
        except av.error.FFmpegError as exc:
            raise ProcessingError(f"{self.src}: video encoder failed ({_reason(exc)}); nothing written") from None

    def _mux(self, packets) -> None:
        try:
            with self.mux_lock:  # video from the encoder thread, audio from this one
                self.out.mux(packets)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write the output of {self.src.name} ({_reason(exc)}); nothing written") from None


def _add_video_stream(out, codec: str, source: _Source, cfg: VideoConfig, fmt: str, tb: Fraction):
    info = source.info
    vout = out.add_stream(codec, rate=info.fps or Fraction(25), options=_encoder_options(codec, cfg))
    vout.width, vout.height = info.width, info.height
    vout.pix_fmt = _pix_fmt(codec, info.width, info.height)
    enc_tb = _encoder_time_base(codec, fmt, tb, info.fps)
    vout.time_base = enc_tb
    vout.codec_context.time_base = enc_tb
    vout.codec_context.thread_count = _ENCODER_THREADS
    if codec == "mpeg4":  # no crf: map 0..51 to a fixed quantizer 1..13 (crf 20 -> q 5)
        vout.codec_context.qscale = True
        vout.codec_context.global_quality = max(1, min(31, round(cfg.crf / 4))) * 118  # FF_QP2LAMBDA
    for key, value in source.colors.items():
        if value not in (0, 2) or (key == "color_range" and value):  # 2 = unspecified, except for range
            with contextlib.suppress(AttributeError, ValueError, TypeError):
                setattr(vout.codec_context, key, value)
    return vout  # upright: no display matrix (see the module docstring)


def _encoder_time_base(codec: str, fmt: str, tb: Fraction, fps: Optional[Fraction]) -> Fraction:
    """The input's time base, except where the output cannot use it (pts are rescaled then)."""
    if fmt == "avi" and fps:
        return 1 / fps  # AVI counts frames: constant frame rate only
    if codec == "mpeg4" and tb.denominator > 65535:
        return Fraction(1, 60000)  # MPEG-4 part 2 limit
    return tb


# ----------------------------------------------------------------------------- audio


def _add_audio(inp, out, cfg: VideoConfig, fmt: str, lo, hi, mux, src: Path):
    if not cfg.copy_audio or not inp.streams.audio:
        return None
    ain = inp.streams.best("audio") or inp.streams.audio[0]
    name = ain.codec_context.name
    trimming = lo is not None or hi is not None
    if not trimming and name in out.supported_codecs and not (fmt == "webm" and name not in ("opus", "vorbis")):
        return _AudioCopy(ain, out.add_stream_from_template(ain), mux)
    try:
        return _AudioReencode(ain, out, fmt, lo, hi, mux)
    except (av.error.FFmpegError, ValueError) as exc:
        log.warning("%s: audio (%s) cannot be re-encoded (%s); writing video without audio", src, name, _reason(exc))
        return None


class _AudioCopy:
    """Bit-exact stream copy: packets keep their timestamps."""

    reencoded = False

    def __init__(self, ain, aout, mux):
        self.ain, self.aout, self.mux = ain, aout, mux
        self.written = False

    def start(self, origin) -> None:
        pass

    def feed(self, packet: av.Packet) -> bool:
        if packet.size and packet.dts is not None:
            packet.stream = self.aout
            self.mux(packet)
            self.written = True
        return False

    def finish(self) -> None:
        pass


class _AudioReencode:
    """Decode, cut to the sample at the video's first kept frame / ``end``, re-encode."""

    reencoded = True

    def __init__(self, ain, out, fmt: str, lo, hi, mux):
        codec = "libopus" if fmt == "webm" else "aac"
        rates = av.codec.Codec(codec, "w").audio_rates
        rate = ain.codec_context.sample_rate
        if rates and rate not in rates:
            rate = 48000
        self.aout = out.add_stream(codec, rate=rate)
        keep = codec == "aac" or ain.codec_context.channels <= 2
        self.aout.codec_context.layout = ain.codec_context.layout.name if keep else "stereo"
        self.aout.codec_context.bit_rate = min(max(ain.codec_context.bit_rate or 0, 128_000), 320_000)
        self.ain, self.mux, self.hi = ain, mux, hi
        self.waiting = lo is not None  # hold packets until the first kept video frame is known
        self.pending: list[av.Packet] = []
        self.lo: Optional[Fraction] = None
        self.shift: Optional[Fraction] = None
        self.next_t: Optional[Fraction] = None
        self.flushed = self.written = False

    def start(self, origin: Optional[Fraction]) -> None:
        """The video's first kept frame is at ``origin`` (None: no start trimming)."""
        self.waiting = False
        self.lo = self.shift = origin
        pending, self.pending = self.pending, []
        for packet in pending:
            self.feed(packet)

    def feed(self, packet: av.Packet) -> bool:
        """Take one demuxed audio packet; True once the audio has passed ``end``."""
        if self.waiting:
            self.pending.append(packet)
            return False
        if packet.size == 0:
            self.flushed = True
        for frame in self._decode(packet):
            self._encode(frame)
        if self.hi is None or packet.pts is None:
            return False
        return packet.pts * packet.time_base >= self.hi

    def finish(self) -> None:
        if self.waiting:  # no video frame was kept: nothing to align the audio to
            return
        if not self.flushed:
            for frame in self._decode(None):
                self._encode(frame)
        self._mux_encoded(None)

    def _decode(self, packet):
        try:
            return self.ain.decode(packet)
        except av.error.EOFError:
            return []
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"cannot decode the audio ({_reason(exc)}); nothing written") from None

    def _encode(self, frame: av.AudioFrame) -> None:
        rate = frame.sample_rate
        t = frame.pts * frame.time_base if frame.pts is not None and frame.time_base is not None else (self.next_t or Fraction(0))
        self.next_t = t + Fraction(frame.samples, rate)
        i0 = 0 if self.lo is None else max(0, math.ceil((self.lo - t) * rate))
        i1 = frame.samples if self.hi is None else min(frame.samples, math.ceil((self.hi - t) * rate))
        if i1 <= i0:
            return
        if (i0, i1) != (0, frame.samples):
            frame = _slice_audio(frame, i0, i1)
        frame.pts = round((t + Fraction(i0, rate) - (self.shift or 0)) * rate)
        frame.time_base = Fraction(1, rate)
        self._mux_encoded(frame)

    def _mux_encoded(self, frame) -> None:
        try:
            packets = self.aout.encode(frame)
        except av.error.FFmpegError as exc:
            raise ProcessingError(f"audio encoder failed ({_reason(exc)}); nothing written") from None
        self.mux(packets)
        self.written = self.written or bool(packets)


def _slice_audio(frame: av.AudioFrame, i0: int, i1: int) -> av.AudioFrame:
    arr = frame.to_ndarray()
    if frame.format.is_planar:
        arr = arr[:, i0:i1]
    else:  # packed: one row, channels interleaved
        ch = len(frame.layout.channels)
        arr = arr[:, i0 * ch : i1 * ch]
    # PyAV's stubs type to_ndarray() loosely and from_ndarray() by sample dtype: the array comes from to_ndarray()
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=frame.format.name, layout=frame.layout.name)  # type: ignore[arg-type]
    out.sample_rate = frame.sample_rate
    return out
