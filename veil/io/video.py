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
* Audio is stream-copied where the output can hold it, else re-encoded (:mod:`veil.io.audio`).
  Container metadata, subtitles, data streams and extra tracks are not copied: they can
  carry GPS positions, names and other identifying details.
* Fail closed: a file that cannot be opened, a demux/decode error, a packet or frame flagged
  corrupt, or a video stream that ends well before the duration its container declares
  (a truncated download) raises CorruptMediaError and nothing is written. The frames decoded
  before the damage could have been anonymized, but a silently shortened output is easy to
  mistake for a complete one. No frame reaches the output without passing through ``process``.
* The input is opened once (:class:`veil.io.reader.VideoReader`): its ``VideoInfo`` goes to
  ``on_info`` (progress bars, reports) before ``process`` starts, and frame 0 is decoded once.
* Three threads overlap: decoding + RGB conversion run ahead on the reader's thread, the
  caller runs ``process`` (detection, rendering) and converts its output to YUV, and the
  encoder's thread encodes and muxes (:class:`veil.io.encoder.VideoEncoder`, the same encoder
  live streams use). Each frame is converted to the encoder's YUV (a copy) before it is
  queued, so ``process`` may reuse its output buffers. A reader, encoder or muxer error is
  raised at the next frame, and both threads are stopped before the containers are closed.
* All or nothing: output goes to a temporary file next to ``dst`` that is renamed over it
  on success and deleted on any exception (KeyboardInterrupt and errors raised inside
  ``process`` included); see :mod:`veil.io.atomic`.

Speed, pedestrians_1080p.mp4 (105 frames 1920x1080 + AAC), identity ``process``, 2 shared
cores (load 5-6), 3 alternating runs each, whole process: transcode_video 8.3-9.1 s wall,
5.7-6.0 s CPU; ``ffmpeg -c:v libx264 -preset veryfast -crf 20 -c:a copy`` 6.3-7.5 s, 4.9-5.1 s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from ..config import VideoConfig
from ..errors import ConfigError, ProcessingError
from .atomic import atomic_output
from .audio import add_audio
from .encoder import CODECS, X26X_PRESETS, VideoEncoder, check_frame, choose_codec, close_output, encoder_time_base, open_output
from .reader import MAX_PIXELS, MAX_SIDE, VideoInfo, VideoReader, probe_video, read_frames

__all__ = ["VideoInfo", "VideoStats", "probe_video", "read_frames", "transcode_video", "decode_video",
           "MAX_SIDE", "MAX_PIXELS", "CODECS", "X26X_PRESETS"]

log = logging.getLogger("veil")

#: Output container per ``dst`` suffix.
FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
_READ_AHEAD = 4  # frames decoded (RGB) ahead of ``process`` on the reader's thread


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


def _container_format(dst: Path) -> str:
    fmt = FORMATS.get(dst.suffix.lower())
    if fmt is None:
        suffix = dst.suffix or "(no suffix)"
        raise ConfigError(f"{dst}: unsupported video output format {suffix!r}; use {', '.join(FORMATS)}")
    return fmt


def _check_trim(cfg: VideoConfig) -> None:
    if cfg.start is not None and cfg.end is not None and cfg.end <= cfg.start:
        raise ConfigError(f"end ({cfg.end} s) must be after start ({cfg.start} s)")


def transcode_video(
    src: Path,
    dst: Path,
    process: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]],
    cfg: VideoConfig,
    on_frame: Optional[Callable[[int], None]] = None,
    replace: bool = True,
    on_info: Optional[Callable[[VideoInfo], None]] = None,
) -> VideoStats:
    """Decode ``src``, run its frames through ``process``, encode them to ``dst``.

    ``process`` gets an iterator of RGB uint8 frames (H x W x 3, C-contiguous) and must yield
    exactly one frame of the same shape per input frame, in order (it may read ahead).
    ``on_info(info)`` is called once the input is open, before ``process`` gets a frame;
    ``on_frame(n)`` after the n-th frame is written. ``dst``'s suffix picks the container
    (.mp4 .mov .mkv .webm .avi). See the module docstring for what is kept.
    ``replace=False``: never replace an existing ``dst``, even one that appeared meanwhile.

    Raises ConfigError (settings), InputError subclasses (the input), OutputError (cannot
    write), ProcessingError (``process`` broke its contract, or encoding failed), and
    re-raises whatever ``process`` raises. In every case nothing is left at ``dst``.
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    fmt = _container_format(dst)
    codec = choose_codec(cfg, fmt)
    _check_trim(cfg)
    with VideoReader(src, cfg.start, cfg.end, ahead=_READ_AHEAD) as reader:
        if on_info is not None:
            on_info(reader.info)
        with atomic_output(dst, replace=replace) as tmp:
            out = open_output(str(tmp), fmt, str(dst))
            try:
                job = _Transcoder(reader, out, cfg, codec, fmt)
                job.run(process, on_frame)
            except BaseException:
                with contextlib.suppress(Exception):
                    out.close()
                raise
            close_output(out, str(dst), "; nothing written")
            stats = job.stats(time.perf_counter() - t0)
    log.info(
        "%s -> %s: %d frames %dx%d, %.1f s of video, audio %s, %.1f s",
        src.name, dst.name, stats.frames_out, stats.width, stats.height, stats.duration_s,
        "re-encoded" if stats.audio_reencoded else "copied" if stats.audio_copied else "none", stats.seconds,
    )  # fmt: skip
    return stats


def decode_video(src: Path, cfg: VideoConfig,
                 on_info: Optional[Callable[[VideoInfo], None]] = None) -> Generator[tuple[np.ndarray, float], None, None]:
    """The frames :func:`transcode_video` would hand ``process`` (same trimming, same order),
    each with its presentation time in seconds as written to an output, without writing one:
    analysis (``veil analyze``) needs the frames and their time table, not an encode.
    ``on_info(info)`` is called once the input is open, before the first frame."""
    src = Path(src)
    _check_trim(cfg)
    with VideoReader(src, cfg.start, cfg.end, ahead=_READ_AHEAD) as reader:
        if on_info is not None:
            on_info(reader.info)
        frames = reader.frames()
        try:
            for arr, pts in frames:
                yield arr, float(pts * reader.tb)
        finally:
            frames.close()
        reader.check_complete()
    if reader.frames_in == 0:
        raise ConfigError(f"{src}: no video frames between start and end")


class _Transcoder:
    """One pass: the reader's frames -> ``process`` -> the encoder; audio beside them."""

    def __init__(self, reader: VideoReader, out, cfg: VideoConfig, codec: str, fmt: str):
        self.reader, self.src, self.info = reader, reader.src, reader.info
        info, tb = reader.info, reader.tb
        self.encoder = VideoEncoder(
            out, codec, cfg, info.width, info.height, info.fps or Fraction(25), reader.colors,
            encoder_time_base(codec, fmt, tb, info.fps), who=str(self.src), where=f"the output of {self.src.name}",
            tail="; nothing written",
        )  # upright: no display matrix (see the module docstring)
        reader.audio = add_audio(reader.inp, out, cfg, fmt, reader.lo, reader.hi, self.encoder.mux, self.src)
        self.fifo: deque[int] = deque()  # output pts of frames handed to `process`, not yet back
        self.frames_out = 0

    def run(self, process, on_frame) -> None:
        reader = self.reader
        decoded = reader.frames()
        frames = self._frames(decoded)
        with self.encoder:
            try:
                for arr in process(frames):
                    self._write(arr)
                    if on_frame is not None:
                        on_frame(self.frames_out)
                if not reader.video_done and next(frames, None) is not None:
                    raise ProcessingError(f"{self.src}: process stopped reading frames before the end; nothing written")
            finally:
                frames.close()
                decoded.close()
            if self.fifo:
                raise ProcessingError(
                    f"{self.src}: process returned {self.frames_out} frames for {reader.frames_in}; nothing written"
                )
            if reader.frames_in == 0:
                length = f"{self.info.duration_s:.2f} s" if self.info.duration_s else "shorter"
                raise ConfigError(f"{self.src}: no video frames between start and end (the video is {length})")
            reader.check_complete()
            self.encoder.finish()
        if reader.audio is not None:
            reader.drain_audio()
            reader.audio.finish()

    def stats(self, seconds: float) -> VideoStats:
        reader, audio = self.reader, self.reader.audio
        return VideoStats(
            frames_in=reader.frames_in,
            frames_out=self.frames_out,
            width=self.info.width,
            height=self.info.height,
            fps=self.info.fps,
            duration_s=float((reader.kept_end - (reader.first_out or 0)) * reader.tb),
            audio_copied=audio is not None and audio.written,
            seconds=seconds,
            audio_reencoded=audio is not None and audio.written and audio.reencoded,
        )

    def _frames(self, decoded) -> Generator[np.ndarray, None, None]:
        for arr, pts in decoded:
            self.fifo.append(pts)
            yield arr

    def _write(self, arr) -> None:
        if not self.fifo:
            raise ProcessingError(f"{self.src}: process returned more frames than it was given; nothing written")
        pts = self.fifo.popleft()
        shape = (self.info.height, self.info.width, 3)
        self.encoder.submit(check_frame(arr, shape, str(self.src), "; nothing written"), pts * self.reader.tb)
        self.frames_out += 1
