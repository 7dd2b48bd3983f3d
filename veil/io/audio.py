"""The audio of a video file: stream-copied where the output can hold it, else re-encoded.

Audio is stream-copied (bit-exact) when the output container can hold its codec, else
re-encoded to AAC (Opus for .webm, which cannot hold AAC). With ``start``/``end`` the audio
is decoded, cut to the sample at the video's first kept frame and at ``end``, and
re-encoded (the encoder pads its last frame: AAC may run up to 23 ms long). Stream copy
could only cut at packet edges, and AAC priming makes such cuts imprecise. Live streams
carry no audio (the voice in them would be as identifying as the face).

The writer (:mod:`veil.io.video`) feeds every demuxed audio packet to the object
:func:`add_audio` returns, tells it where the first kept video frame is (``start``) and
calls ``finish`` after the video; packets go to ``mux`` (the video encoder's, which is
locked: video is muxed from the encoder thread).
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import av.error
import numpy as np

from ..config import VideoConfig
from ..errors import CorruptMediaError, ProcessingError
from .av_errors import reason

__all__ = ["add_audio"]

log = logging.getLogger("veil")


def add_audio(inp, out, cfg: VideoConfig, fmt: str, lo, hi, mux, src: Path):
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
        log.warning("%s: audio (%s) cannot be re-encoded (%s); writing video without audio", src, name, reason(exc))
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
            raise CorruptMediaError(f"cannot decode the audio ({reason(exc)}); nothing written") from None

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
            raise ProcessingError(f"audio encoder failed ({reason(exc)}); nothing written") from None
        self.mux(packets)
        self.written = self.written or bool(packets)


def _slice_audio(frame: av.AudioFrame, i0: int, i1: int) -> av.AudioFrame:
    arr = frame.to_ndarray()
    if frame.format.is_planar:
        arr = arr[:, i0:i1]
    else:  # packed: one row, channels interleaved
        ch = len(frame.layout.channels)
        arr = arr[:, i0 * ch : i1 * ch]
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=frame.format.name, layout=frame.layout.name)  # type: ignore[arg-type]
    out.sample_rate = frame.sample_rate
    return out
