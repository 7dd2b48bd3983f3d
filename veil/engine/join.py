"""Join encoded segments into one file by stream copy, and mux the source's audio once.

PyAV remuxing rather than the ``ffmpeg`` binary's concat demuxer: no subprocess, no list
file, no second binary to find, and every packet passes our checks on its way (same encoder
parameters in every segment, timestamps that land exactly on the source's, decode order
that keeps increasing), which concat would take on trust. Each segment was written by the
local path's writer with its times rebased to 0 (``VideoConfig.start``); its packets move
back to the source's times here, so the joined stream has the frame times the one-pass
output has. Video and audio are interleaved by time while muxing.

Audio is what the local path writes without trimming: the source's best audio stream,
stream-copied when the container can hold it. Where it would have to be re-encoded (AAC
into .webm), segmented runs refuse before any work (:func:`check_audio`). Container metadata
is not copied, as in the local path (it can carry GPS positions, names).
"""

from __future__ import annotations

import contextlib
import heapq
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import av.error

from ..config import VideoConfig
from ..errors import ConfigError, OutputError, ProcessingError
from .keyframes import Layout

__all__ = ["check_audio", "join_segments"]


def _audio_stream(inp, cfg: VideoConfig):
    if not cfg.copy_audio or not inp.streams.audio:
        return None
    return inp.streams.best("audio") or inp.streams.audio[0]


def check_audio(src: Path, dst: Path, cfg: VideoConfig) -> None:
    """Refuse an audio track that the output container cannot take by stream copy."""
    fmt = {".webm": "webm"}.get(dst.suffix.lower())
    with av.open(str(src), metadata_errors="replace") as inp:
        ain = _audio_stream(inp, cfg)
        if ain is None:
            return
        name = ain.codec_context.name
        if fmt == "webm" and name not in ("opus", "vorbis"):
            raise ConfigError(f"{src}: its {name} audio would have to be re-encoded for .webm; segmented runs "
                              "only stream-copy audio (use .mkv, or the local engine)")


def _video_packets(parts: list[tuple[Path, int]], layout: Layout, vout) -> Iterator[tuple[Fraction, av.Packet]]:
    """Every segment's video packets, moved to the source's times, in decode order."""
    last_dts: Optional[Fraction] = None
    extradata = None
    for path, first in parts:
        with av.open(str(path)) as inp:
            vin = inp.streams.video[0]
            if extradata is None:
                extradata = vin.codec_context.extradata
            elif vin.codec_context.extradata != extradata:
                raise ProcessingError(f"{path.name}: encoded with other parameters than the first segment; "
                                      "cannot join by stream copy")
            offset = layout.pts[first] * layout.time_base  # seconds
            for packet in inp.demux(vin):
                if packet.size == 0 or packet.dts is None:
                    continue
                if packet.pts is None:
                    raise ProcessingError(f"{path.name}: a video packet without a timestamp; cannot join")
                tb = Fraction(packet.time_base)
                shift = offset / tb
                if shift.denominator != 1:
                    raise ProcessingError(f"{path.name}: time base {tb} cannot carry the source's times exactly")
                packet.pts += int(shift)
                packet.dts += int(shift)
                dts = packet.dts * tb
                if last_dts is not None and dts <= last_dts:
                    raise ProcessingError(f"{path.name}: decode times overlap the previous segment's; "
                                          "cannot join by stream copy")
                last_dts = dts
                packet.stream = vout
                yield dts, packet


def _audio_packets(inp, ain, aout) -> Iterator[tuple[Fraction, av.Packet]]:
    for packet in inp.demux(ain):
        if packet.size and packet.dts is not None:
            t = packet.dts * Fraction(packet.time_base)
            packet.stream = aout
            yield t, packet


def join_segments(parts: list[tuple[Path, int]], layout: Layout, src: Path, tmp: Path, cfg: VideoConfig) -> int:
    """Write ``tmp`` from the segment files (path, index of its first frame), with ``src``'s
    audio; returns the video frames written. Checks that every frame time of the source is
    there once (the output has the local path's frame count and times)."""
    try:
        out = av.open(str(tmp), "w")
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{tmp}: cannot write ({exc})") from None
    written: list[Fraction] = []
    try:
        with av.open(str(parts[0][0])) as first, av.open(str(src), metadata_errors="replace") as inp:
            vout = out.add_stream_from_template(first.streams.video[0])
            ain = _audio_stream(inp, cfg)
            aout = out.add_stream_from_template(ain) if ain is not None else None
            streams = [_video_packets(parts, layout, vout)]
            if ain is not None:
                streams.append(_audio_packets(inp, ain, aout))
            for _, packet in heapq.merge(*streams, key=lambda tp: tp[0]):
                if packet.stream is vout and packet.pts is not None:  # (always set: checked above)
                    written.append(packet.pts * Fraction(packet.time_base))
                out.mux(packet)
        out.close()
    except BaseException:
        with contextlib.suppress(Exception):
            out.close()
        raise
    got = sorted(written)
    want = [p * layout.time_base for p in layout.pts]
    if got != want:
        raise ProcessingError(f"the joined video has {len(got)} frames where the source has {len(want)}, or other "
                              "times; nothing written")
    return len(written)
