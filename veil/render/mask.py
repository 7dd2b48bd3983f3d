"""The region a filter covers: an expanded ellipse or box around each face, with an
optional feathered edge.

The mask is computed per face on a small region of interest (ROI), never on the whole
frame, so its cost scales with face size, not frame size. Feathering only ever adds a soft
rim *outside* the hard mask: the expanded box is always fully covered, so softer edges
never uncover any part of the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import MASK_SCALE

__all__ = ["Region", "face_regions", "head_boxes", "mask_regions", "HEAD_UP", "HEAD_BACK"]

#: Head-box extension (see :func:`head_boxes`), chosen on OTB "Boy": docs/benchmarks.md.
HEAD_UP = 0.2
HEAD_BACK = 4.0


@dataclass(frozen=True)
class Region:
    """One face's ROI in the frame and its coverage (1 = fully filtered) inside the ROI."""

    x0: int
    y0: int
    x1: int
    y1: int
    alpha: np.ndarray  # (y1-y0, x1-x0) float32 in [0, 1]
    size: float  # the mask's long side in pixels (filters scale their strength with it)

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def face_regions(xyxy: np.ndarray, frame_hw: tuple[int, int], shape: str = "ellipse",
                 scale: float = MASK_SCALE, feather: float = 0.0) -> list[Region]:
    """Regions for the given boxes, clipped to the frame (empty ones are skipped)."""
    h, w = frame_hw
    out = []
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float64):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hw_, hh = (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
        rim = feather * 2 * max(hw_, hh)
        X0, Y0 = int(np.floor(cx - hw_ - rim)), int(np.floor(cy - hh - rim))
        X1, Y1 = int(np.ceil(cx + hw_ + rim)), int(np.ceil(cy + hh + rim))
        x0c, y0c, x1c, y1c = max(X0, 0), max(Y0, 0), min(X1, w), min(Y1, h)
        if x1c <= x0c or y1c <= y0c:
            continue
        # draw on the unclipped ROI, then crop to the frame
        mask = np.zeros((Y1 - Y0, X1 - X0), np.uint8)
        center = (cx - X0, cy - Y0)
        if shape == "ellipse":
            # cv2.ellipse wants integer geometry; use 4 bits of sub-pixel precision
            cv2.ellipse(mask, (int(round(center[0] * 16)), int(round(center[1] * 16))),
                        (int(np.ceil(hw_ * 16)), int(np.ceil(hh * 16))), 0, 0, 360, 255, -1, cv2.LINE_8, 4)
        else:
            mask[max(0, int(np.floor(center[1] - hh))) : int(np.ceil(center[1] + hh)),
                 max(0, int(np.floor(center[0] - hw_))) : int(np.ceil(center[0] + hw_))] = 255
        alpha = mask.astype(np.float32) / 255.0
        if rim >= 1:
            sigma = rim / 2.5
            soft = cv2.GaussianBlur(cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(rim) | 1,) * 2)),
                                    (0, 0), sigma).astype(np.float32) / 255.0
            alpha = np.maximum(alpha, soft)
        alpha = alpha[y0c - Y0 : y1c - Y0, x0c - X0 : x1c - X0]
        out.append(Region(x0c, y0c, x1c, y1c, np.ascontiguousarray(alpha), float(2 * max(hw_, hh))))
    return out


def head_boxes(xyxy: np.ndarray, landmarks: np.ndarray, up: float = HEAD_UP, back: float = HEAD_BACK) -> np.ndarray:
    """Grow face boxes into head boxes, which is what a mask must hide.

    Face detectors box the face from brows to chin. The head also has a forehead and hair
    above (``up`` x box height is added on top) and, when the face is turned, a back of the
    head: from the 5 landmarks, the nose's horizontal offset from the eyes' midpoint (as a
    fraction of the box width, about 0.2 in profile) says which way the face looks, and the
    box is extended ``back`` times that offset on the other side. Boxes are only ever
    extended, never moved, so a wrong landmark cannot uncover the face. Rows without
    landmarks (coasted or interpolated boxes) get the upward extension only.
    """
    out = np.asarray(xyxy, np.float32).copy()
    if len(out) == 0:
        return out
    w = out[:, 2] - out[:, 0]
    h = out[:, 3] - out[:, 1]
    out[:, 1] -= up * h
    lm = np.asarray(landmarks, np.float32)
    eyes_mid = (lm[:, 0, 0] + lm[:, 1, 0]) / 2
    turn = np.nan_to_num((lm[:, 2, 0] - eyes_mid) / np.maximum(w, 1e-6))  # > 0: looks right (in the image)
    turn = np.clip(turn, -0.5, 0.5)
    ext = back * np.abs(turn) * w
    out[:, 0] -= np.where(turn > 0, ext, 0)
    out[:, 2] += np.where(turn < 0, ext, 0)
    return out


def mask_regions(faces, frame_hw: tuple[int, int], shape: str = "ellipse", scale: float = MASK_SCALE,
                 feather: float = 0.0, head: bool = True) -> list[Region]:
    """The regions the renderer hides for the faces to anonymize (also used to measure leaks)."""
    hide = faces.to_anonymize  # the columns it needs, without building a Faces of them
    xyxy = head_boxes(faces.xyxy[hide], faces.landmarks[hide]) if head else faces.xyxy[hide]
    return face_regions(xyxy, frame_hw, shape, scale, feather)
