"""One video encoder for files and live streams: RGB frames in, an encoded, muxed stream out.

Both writers (:mod:`veil.io.video` for files, :mod:`veil.io.live` for streams) hand their
anonymized RGB frames to a :class:`VideoEncoder`; what an encoder must get right is written
once, here:

* **Settings.** ``VideoConfig.codec`` names map to FFmpeg encoders; x264/x265 take CRF and a
  preset, VP9 a constant quality on its own scale, MPEG-4 part 2 a fixed quantiser. Live
  outputs (``low_delay``) add ``tune=zerolatency`` / VP9 realtime and a keyframe every 2 s
  so that viewers can join.
* **Exact size.** 4:2:0 chroma needs even sides, so odd sizes are encoded as yuv444p (no
  padding, no scaling; mpeg4 takes odd 4:2:0 as is).
* **Colours.** The input's matrix and range are used for RGB->YUV and tagged on the output
  (primaries and transfer too), so colours come back as they went in.
* **Time.** Frames arrive with their time in seconds; pts are counted in the encoder's time
  base and made strictly increasing (encoders require it).
* **Overlap.** Encoding and muxing run on one background thread (:mod:`veil.io.background`,
  a bounded queue), beside the detection of the next frames, with half the cores for the
  encoder's own threads (libx264's own choice, 1.5 x cores, made encoder and detector
  fight: OTB Boy, 2 cores, every 3rd frame 5.43 -> 4.90 s). The RGB->YUV conversion (a copy)
  is done on the calling thread before queueing, so the caller may reuse its buffers.
* **Fail closed.** An encoder or muxer error is raised in the caller at its next
  :meth:`VideoEncoder.submit` or at :meth:`VideoEncoder.finish`, as ProcessingError (the
  encoder) or OutputError (the muxer: disk full, receiver gone); the caller then discards or
  finalizes its output by its own rules. The thread is always stopped before the container
  is closed (an interruption while waiting for it drops the queued frames and waits on).
  A signal cannot fall between "the encoder handed out a packet" and "the muxer wrote it":
  signals are delivered to the main thread only, and the final flush runs with them held.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from fractions import Fraction
from typing import Optional, Union

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from ..config import VideoConfig
from ..errors import ConfigError, OutputError, ProcessingError
from .av_errors import reason
from .background import Background
from .interrupts import interrupts_deferred

__all__ = ["CODECS", "X26X_PRESETS", "VideoEncoder", "check_frame", "choose_codec", "close_output", "open_output",
           "encoder_time_base"]

log = logging.getLogger("veil")

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
ENCODE_QUEUE = 8  # frames waiting for the encoder thread (memory: 8 YUV frames)
LOW_DELAY_QUEUE = 2  # live outputs: each queued frame adds its encode time to the delay
ENCODER_THREADS = max(1, (os.cpu_count() or 2) // 2)  # the encoder runs beside detection: half the cores each
# AVColorSpace -> swscale matrix (SWS_CS_*); others use swscale's default (BT.601).
SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
COLOR_KEYS = ("colorspace", "color_range", "color_primaries", "color_trc")


# ----------------------------------------------------------------------------- settings


def choose_codec(cfg: VideoConfig, fmt: str) -> str:
    """The FFmpeg encoder for ``cfg.codec`` in container ``fmt``; ConfigError if unusable."""
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


def encoder_options(codec: str, cfg: VideoConfig, low_delay: bool = False) -> dict[str, str]:
    opts: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        opts = {"crf": str(cfg.crf), "preset": _preset(cfg)}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        if low_delay:
            opts["tune"] = "zerolatency"
    elif codec == "libvpx-vp9":  # constant quality; VP9's crf scale is 0..63
        cpu_used = _VP9_CPU_USED.get(_preset(cfg), 0)
        crf = min(63, round(cfg.crf * 1.5))  # x264's 20 looks about like VP9's 30
        opts = {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": str(cpu_used), "row-mt": "1"}
        if low_delay:
            opts.update({"deadline": "realtime", "lag-in-frames": "0"})
    return opts  # mpeg4: fixed quantizer, set on the codec context


def pix_fmt(codec: str, width: int, height: int) -> str:
    if codec == "mpeg4" or (width % 2 == 0 and height % 2 == 0):
        return "yuv420p"
    return "yuv444p"  # 4:2:0 cannot hold odd sizes exactly


def encoder_time_base(codec: str, fmt: str, tb: Fraction, fps: Optional[Fraction]) -> Fraction:
    """``tb`` (the input's), except where the output cannot use it (pts are rescaled then)."""
    if fmt == "avi" and fps:
        return 1 / fps  # AVI counts frames: constant frame rate only
    if codec == "mpeg4" and tb.denominator > 65535:
        return Fraction(1, 60000)  # MPEG-4 part 2 limit
    return tb


def check_frame(arr, shape: tuple[int, int, int], who: str, tail: str = "") -> np.ndarray:
    """``arr`` if it is a uint8 frame of ``shape`` (the frame contract of ``process``), C-contiguous."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != shape:
        got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ProcessingError(f"{who}: process returned a {got} frame, expected uint8 {shape}{tail}")
    return np.ascontiguousarray(arr)


# ----------------------------------------------------------------------------- containers


def open_output(target: str, fmt: str, shown: str, options: Optional[dict] = None) -> av.container.OutputContainer:
    try:
        return av.open(target, "w", format=fmt, container_options=options or {})
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise OutputError(f"{shown}: cannot write ({reason(exc)})") from None


def close_output(out, shown: str, tail: str = "") -> None:
    """Write the trailer (mp4 index) and close, with interruptions held; OutputError if it fails."""
    try:
        with interrupts_deferred():
            out.close()
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{shown}: cannot finish writing ({reason(exc)}){tail}") from None


# ----------------------------------------------------------------------------- the encoder


class VideoEncoder:
    """RGB frames -> one video stream of ``out``, encoded and muxed on a background thread.

    ``who`` starts encoder error messages, ``where`` completes "cannot write ..." for muxer
    errors, ``tail`` ends both ("; nothing written" for all-or-nothing files). Use
    :meth:`submit` per frame, then :meth:`finish` (drain, flush) or :meth:`abort` (drop);
    leaving a ``with`` block aborts whatever is still running.
    """

    def __init__(self, out, codec: str, cfg: VideoConfig, width: int, height: int, rate: Fraction,
                 colors: dict, time_base: Fraction, *, who: str, where: str, tail: str = "",
                 low_delay: bool = False, depth: Optional[int] = None):  # fmt: skip
        self.out, self.who, self.where, self.tail = out, who, where, tail
        self.shape = (height, width, 3)
        try:
            self.vout = out.add_stream(codec, rate=rate, options=encoder_options(codec, cfg, low_delay))
        except (av.error.FFmpegError, ValueError) as exc:
            raise ConfigError(f"{who}: cannot encode {codec} into {out.format.name} ({reason(exc)})") from None
        self.vout.width, self.vout.height = width, height
        self.vout.pix_fmt = self.pix_fmt = pix_fmt(codec, width, height)
        self.tb = time_base
        self.vout.time_base = time_base
        cc = self.vout.codec_context
        cc.time_base = time_base
        cc.thread_count = ENCODER_THREADS
        if low_delay:
            cc.gop_size = max(1, round(2 * rate))  # a keyframe every 2 s: viewers can join
        if codec == "mpeg4":  # no crf: map 0..51 to a fixed quantizer 1..13 (crf 20 -> q 5)
            cc.qscale = True
            cc.global_quality = max(1, min(31, round(cfg.crf / 4))) * 118  # FF_QP2LAMBDA
        for key, value in colors.items():
            if value not in (0, 2) or (key == "color_range" and value):  # 2 = unspecified, except for range
                with contextlib.suppress(AttributeError, ValueError, TypeError):
                    setattr(cc, key, value)
        self.dst_matrix = SWS_MATRIX.get(colors.get("colorspace", 0))  # 0 (RGB) or absent: the encoder's default
        self.dst_range = colors.get("color_range") or None
        self.to_yuv = VideoReformatter()  # one scaler context for all frames
        self.last_pts: Optional[int] = None
        self.mux_lock = threading.Lock()  # video from the encoder thread, audio from the caller's
        if depth is None:
            depth = LOW_DELAY_QUEUE if low_delay else ENCODE_QUEUE
        self.thread = Background(depth=depth, name="veil-encoder")

    @property
    def frames(self) -> int:
        """Frames the muxer wrote (one packet a frame): what the output holds."""
        return self.vout.frames

    def submit(self, arr: np.ndarray, t: Union[Fraction, float]) -> None:
        """Queue one frame (uint8 RGB of the stream's size) shown at ``t`` seconds; raises an
        earlier frame's encoder/muxer error instead, if there was one."""
        rgb = av.VideoFrame.from_numpy_buffer(arr, format="rgb24")  # no copy
        frame = self.to_yuv.reformat(
            rgb, format=self.pix_fmt, dst_colorspace=self.dst_matrix, dst_color_range=self.dst_range, threads=1
        )
        pts = round(t / self.tb)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        self.last_pts = pts
        frame.pts = pts
        frame.time_base = self.tb
        self.thread.submit(self._encode_and_mux, frame)

    def finish(self) -> None:
        """Encode every queued frame, then flush the encoder; raises the first error."""
        self.thread.finish()
        with interrupts_deferred():
            self._encode_and_mux(None)

    def abort(self) -> None:
        """Drop the queued frames and stop the thread (waits for a frame being encoded)."""
        self.thread.abort()

    def __enter__(self) -> "VideoEncoder":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()

    def mux(self, packets) -> None:
        try:
            with self.mux_lock:
                self.out.mux(packets)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.where} ({reason(exc)}){self.tail}") from None

    def _encode_and_mux(self, frame: Optional[av.VideoFrame]) -> None:
        try:
            packets = self.vout.encode(frame)
        except av.error.FFmpegError as exc:
            raise ProcessingError(f"{self.who}: video encoder failed ({reason(exc)}){self.tail}") from None
        self.mux(packets)
