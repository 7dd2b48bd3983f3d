"""Display orientation of video frames: turn stored frames the way a player shows them.

Phones store most clips sideways (the sensor's landscape rows) and tag the stream with a
*display matrix* (or, in files from older muxers, a ``rotate`` tag) that players apply. A
face that is upright on screen then lies on its side in the stored pixels, where face
detectors miss most of them. veil therefore turns every frame into display orientation
*before* detection, so that detection, head-box growth (upward on screen), tracking, the
report's boxes and the written frames all live in the frame the viewer sees.

Only right-angle orientations exist in practice (the 8 combinations of 0/90/180/270 and a
mirror); any other matrix (a 45-degree turn, a shear) is refused rather than guessed at,
failing closed. Matrix semantics follow FFmpeg's libavutil/display.h: a stored pixel
``(x, y)`` is shown at ``(a*x + c*y, b*x + d*y)`` (plus an offset) with ``a, b, c, d`` the
matrix entries 0, 1, 3, 4; checked against FFmpeg's own autorotation for every case in
tests/test_rotation.py.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from ..errors import UnsupportedMediaError

__all__ = ["Orientation", "UPRIGHT", "display_matrix", "frame_orientation", "orientation_from_matrix",
           "orientation_from_rotation"]

#: |entry| below this fraction of the largest entry counts as zero (matrices are 16.16 fixed point)
_ZERO = 1e-3


@dataclass(frozen=True)
class Orientation:
    """How to turn a stored frame for display: optionally transpose (swap rows and
    columns), then reverse the rows and/or the columns. The 8 combinations are the 4 right
    -angle rotations, each with or without a mirror."""

    transpose: bool = False
    flip_rows: bool = False  # upside down after the transpose
    flip_cols: bool = False  # left-right after the transpose

    @property
    def upright(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_cols)

    @property
    def mirrored(self) -> bool:
        """The display is a mirror image of the stored frame (an odd number of reflections)."""
        return self.transpose ^ self.flip_rows ^ self.flip_cols

    @property
    def rotation(self) -> int:
        """Clockwise degrees of the turn (after an optional left-right mirror, see ``mirrored``)."""
        probe = np.arange(6, dtype=np.uint8).reshape(2, 3, 1).repeat(3, axis=2)
        shown = self.apply(probe)
        if self.mirrored:
            probe = probe[:, ::-1]
        return next(d for d in (0, 90, 180, 270) if np.array_equal(np.rot90(probe, -d // 90), shown))

    def size(self, width: int, height: int) -> tuple[int, int]:
        """Display (width, height) of a stored ``width`` x ``height`` frame (and back)."""
        return (height, width) if self.transpose else (width, height)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as displayed (a new C-contiguous array unless upright)."""
        if self.upright:
            return rgb
        turn = _CV2_ROTATE.get((self.transpose, self.flip_rows, self.flip_cols))
        if turn is not None:  # one pass instead of two
            return cv2.rotate(rgb, turn)
        out = cv2.transpose(rgb) if self.transpose else rgb
        if self.flip_rows or self.flip_cols:
            code = -1 if self.flip_rows and self.flip_cols else 0 if self.flip_rows else 1
            out = cv2.flip(out, code)
        return out

    def describe(self) -> str:
        turn = f"rotated {self.rotation} deg clockwise" if self.rotation else ""
        mirror = "mirrored" if self.mirrored else ""
        return " and ".join(p for p in (mirror, turn) if p) or "upright"


UPRIGHT = Orientation()
#: the pure turns OpenCV does in one pass: (transpose, flip_rows, flip_cols) -> cv2.rotate code
_CV2_ROTATE = {(True, False, True): cv2.ROTATE_90_CLOCKWISE, (False, True, True): cv2.ROTATE_180,
               (True, True, False): cv2.ROTATE_90_COUNTERCLOCKWISE}


def orientation_from_rotation(degrees_cw: float) -> Orientation:
    """The turn of a clockwise rotation by a right angle (the legacy ``rotate`` tag)."""
    deg = round(float(degrees_cw)) % 360
    table = {0: UPRIGHT, 90: Orientation(True, False, True), 180: Orientation(False, True, True),
             270: Orientation(True, True, False)}
    if deg not in table or abs(float(degrees_cw) - round(float(degrees_cw))) > 0.01:
        raise UnsupportedMediaError(f"display rotation of {degrees_cw} deg is not a right angle; veil cannot apply it")
    return table[deg]


def orientation_from_matrix(matrix: tuple[int, ...]) -> Orientation:
    """The turn described by a 3x3 display matrix (9 int32, FFmpeg's layout)."""
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    big = max(abs(a), abs(b), abs(c), abs(d))
    small = lambda v: abs(v) <= _ZERO * big  # noqa: E731
    if big == 0:
        raise UnsupportedMediaError("the display matrix is degenerate; veil cannot tell how the video is shown")
    if small(b) and small(c) and not small(a) and not small(d):
        return Orientation(False, d < 0, a < 0)
    if small(a) and small(d) and not small(b) and not small(c):
        return Orientation(True, b < 0, c < 0)
    raise UnsupportedMediaError("the display matrix turns the video by an angle other than a right angle; "
                                "veil cannot apply it")


def display_matrix(frame) -> Optional[tuple[int, ...]]:
    """The DISPLAYMATRIX side data of a decoded PyAV frame, if any."""
    try:
        sd = frame.side_data.get("DISPLAYMATRIX")
    except (KeyError, ValueError):
        sd = None
    if sd is None:
        return None
    raw = bytes(sd)
    return struct.unpack("<9i", raw) if len(raw) == 36 else None


def frame_orientation(frame, stream_metadata=None, stream: Optional[Orientation] = None) -> Orientation:
    """A decoded frame's display orientation: its own display matrix; else ``stream`` (the
    stream's, found on an earlier frame) when given; else the stream's legacy ``rotate``
    tag (clockwise degrees, as older FFmpeg muxers wrote and players applied it); else
    upright."""
    matrix = display_matrix(frame)
    if matrix is not None:
        return orientation_from_matrix(matrix)
    if stream is not None:
        return stream
    # FFmpeg looks tags up case-insensitively (Matroska stores this one as ROTATE)
    tag = next((v for k, v in (stream_metadata or {}).items() if k.lower() == "rotate"), None)
    if tag is not None:
        with contextlib.suppress(TypeError, ValueError):
            return orientation_from_rotation(float(tag))
    return UPRIGHT
