"""Frames for the review app: JPEG encoding, and the anonymized preview.

Exact frames by index come from :class:`veil.io.frame_source.FrameSource`; the anonymized
preview renders the current plan onto the frame with the plan's filter, exactly as export will.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CorruptMediaError
from ..plan import Plan

__all__ = ["jpeg", "render_preview"]


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CorruptMediaError("cannot encode the frame as JPEG")
    return buf.tobytes()


def render_preview(rgb: np.ndarray, plan: Plan, index: int, flt) -> np.ndarray:
    """The frame as export will render it under the current plan."""
    from ..pipeline import render_order
    from ..plan_faces import faces_of

    boxes = [f for t in plan.tracks if t.decision == "anonymize" for f in t.frames if f.index == index]
    return flt.apply(rgb, render_order(faces_of(boxes)))
