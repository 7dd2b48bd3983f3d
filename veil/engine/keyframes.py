"""Where a video can be cut: every frame's timestamp and the keyframes that start a closed GOP.

A segment must decode on its own from its first frame, and its frames must be the very
frames (same count, same timestamps) the one-pass decode hands the pipeline. So the file's
video packets are read once without decoding (cheap: no pixels) and a segment may start
only at a keyframe that no later packet reaches behind (an open GOP's leading B-frames
reference the previous GOP and would be lost on a seek there). Files without timestamps
(AVI), with repeated timestamps or with an edit that trims video (``start``/``end``) are
refused: the local engine handles them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from ..errors import ConfigError, CorruptMediaError

__all__ = ["Layout", "Segment", "scan", "plan_segments"]


@dataclass(frozen=True)
class Layout:
    """The video stream's frames in presentation order."""

    pts: tuple[int, ...]  # every frame's pts, in ``time_base`` units, increasing
    time_base: Fraction
    origin: Fraction  # the container's start time (seconds), what ``VideoConfig.start`` counts from
    starts: tuple[int, ...]  # frame indices where a segment may start (closed-GOP keyframes), 0 first

    @property
    def frames(self) -> int:
        return len(self.pts)

    def seconds(self, index: int) -> float:
        """Frame ``index``'s presentation time in seconds, as the local path's plan has it."""
        return float(self.pts[index] * self.time_base)

    def position(self, index: int) -> float:
        """A ``VideoConfig.start``/``end`` value that selects frames from ``index`` on.

        A hair (0.1 us, a tenth of the trimming tolerance) after the frame's time, so that the
        seek lands on this keyframe and float rounding never reaches the frame before."""
        return float(self.pts[index] * self.time_base - self.origin) + 1e-7


@dataclass(frozen=True)
class Segment:
    """Frames ``first`` .. ``end - 1`` of the file (global indices)."""

    number: int
    first: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.first


def scan(src: Path) -> Layout:
    """Read the video stream's packets (no decoding) and find the possible cut points."""
    src = Path(src)
    try:
        with av.open(str(src), metadata_errors="replace") as inp:
            if not inp.streams.video:
                raise ConfigError(f"{src}: no video stream to split")
            vin = inp.streams.best("video") or inp.streams.video[0]
            if "avi" in inp.format.name.split(","):
                raise ConfigError(f"{src}: AVI keeps no presentation times; use the local engine")
            if vin.time_base is None:
                raise ConfigError(f"{src}: the video stream has no time base; use the local engine")
            tb = Fraction(vin.time_base)
            origin = Fraction(inp.start_time or 0, 1_000_000)
            decode_order: list[tuple[int, bool]] = []
            for packet in inp.demux(vin):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise ConfigError(f"{src}: video packets without timestamps; use the local engine")
                decode_order.append((int(packet.pts), bool(packet.is_keyframe)))
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(f"{src}: cannot read the video packets ({exc})") from None
    if not decode_order:
        raise CorruptMediaError(f"{src}: no video frames")
    pts = sorted(p for p, _ in decode_order)
    if any(b <= a for a, b in zip(pts, pts[1:])):
        raise ConfigError(f"{src}: repeated video timestamps; use the local engine")
    index = {p: i for i, p in enumerate(pts)}
    # a keyframe starts a closed GOP when no packet after it (decode order) shows earlier
    later_min = [0] * len(decode_order)
    low = None
    for k in range(len(decode_order) - 1, -1, -1):
        p = decode_order[k][0]
        low = p if low is None else min(low, p)
        later_min[k] = low
    starts = sorted({index[p] for k, (p, key) in enumerate(decode_order) if key and later_min[k] == p} | {0})
    if decode_order[0][0] != pts[0] or not decode_order[0][1]:
        raise ConfigError(f"{src}: the video does not start with a keyframe; use the local engine")
    return Layout(pts=tuple(pts), time_base=tb, origin=origin, starts=tuple(starts))


def plan_segments(layout: Layout, segment_s: float, min_s: float | None = None) -> list[Segment]:
    """Cut at the first keyframe at least ``segment_s`` seconds after the last cut; a last
    piece shorter than ``min_s`` (default: half of ``segment_s``) joins the one before it.
    A file with fewer keyframes gives fewer, longer segments (one, if it has one keyframe)."""
    if segment_s <= 0:
        raise ConfigError(f"segment length must be positive, not {segment_s}")
    min_s = segment_s / 2 if min_s is None else min_s
    t = [layout.seconds(i) for i in layout.starts]
    cuts = [0]
    for i, ti in zip(layout.starts, t):
        if ti - layout.seconds(cuts[-1]) >= segment_s - 1e-9:
            cuts.append(i)
    end_t = layout.seconds(layout.frames - 1)
    if len(cuts) > 1 and end_t - layout.seconds(cuts[-1]) < min_s:
        cuts.pop()
    bounds = cuts + [layout.frames]
    return [Segment(n, a, b) for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]
