"""Edits of a redaction plan, one operation at a time, each checked before it is stored.

They live beside :mod:`veil.plan` (not in :mod:`veil.serve`) because the review app and the
command line both edit plans: the app posts an :class:`Edit`, a person editing the JSON by
hand writes a manual track with ``"follow": true`` and ``veil render`` resolves it with
:func:`resolve_follows`. Following needs the media and a detector, so it happens where they
are (render, the app), and the plan that asks for it stays a plain file a person can write.

Operations (``op``): ``decision`` (anonymize <-> keep, with a reason), ``trim`` (first/last
frame), ``delete``, ``merge`` (tracks of one person), ``add`` (a missed face: ``static``
box over a range, ``interpolate`` between keyframes, or ``follow`` one drawn box forward
and backward with the detector). An edit that would make the plan invalid (a box outside
the frame, an unknown track) raises PlanError and changes nothing.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, Field

from .boxes import box_iou
from .plan import Box, FrameBox, Plan, PlanError, f32

__all__ = ["Edit", "apply_edit", "follow", "resolve_follows"]


class Edit(BaseModel):
    op: Literal["decision", "trim", "delete", "merge", "add"]
    track: Optional[int] = None
    tracks: list[int] = Field(default_factory=list)
    decision: Optional[Literal["anonymize", "keep"]] = None
    reason: str = ""
    first: Optional[int] = None
    last: Optional[int] = None
    mode: Literal["static", "interpolate", "follow"] = "interpolate"
    keyframes: list[tuple[int, Box]] = Field(default_factory=list)
    base_version: Optional[int] = None


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise PlanError(f"this edit needs {what}")
    return value


def apply_edit(plan: Plan, edit: Edit, follower=None) -> tuple[Any, Any]:
    """Apply ``edit`` to ``plan`` in place; returns (before, after) of what changed, for the
    history. ``follower(index, box) -> list[FrameBox]`` runs the ``follow`` mode."""
    if edit.op == "decision":
        t = plan.track(_need(edit.track, "a track"))
        before = {"id": t.id, "decision": t.decision, "reason": t.reason}
        if not edit.reason.strip():
            raise PlanError("say why (a reason is recorded with every decision)")
        plan.set_decision(t.id, _need(edit.decision, "a decision"), edit.reason.strip())
        return before, {"id": t.id, "decision": t.decision, "reason": t.reason}
    if edit.op == "trim":
        t = plan.track(_need(edit.track, "a track"))
        before = {"id": t.id, "first": t.first, "last": t.last}
        plan.trim(t.id, _need(edit.first, "a first frame"), _need(edit.last, "a last frame"))
        return before, {"id": t.id, "first": t.first, "last": t.last}
    if edit.op == "delete":
        t = plan.track(_need(edit.track, "a track"))
        plan.delete(t.id)
        return _summary(t), None
    if edit.op == "merge":
        parts = [_summary(plan.track(i)) for i in edit.tracks]
        merged = plan.merge(edit.tracks)
        return parts, _summary(merged)
    # add
    if not edit.keyframes:
        raise PlanError("draw a box first")
    reason = edit.reason.strip() or "missed face, added by a reviewer"
    kfs = sorted(edit.keyframes)
    if edit.mode == "static":
        (index, box) = kfs[0]
        first, last = edit.first if edit.first is not None else index, edit.last if edit.last is not None else index
        if last < first:
            raise PlanError("the range ends before it starts")
        t = plan.add_manual([(first, box), (last, box)] if last > first else [(first, box)], reason)
    elif edit.mode == "follow":
        if follower is None:
            raise PlanError("following a face needs the media")
        index, box = kfs[0]
        plan.check_boxes([(index, box)])
        t = plan.add_manual([(index, box)], reason, frames=follower(index, box))
    else:
        t = plan.add_manual(kfs, reason)
    return None, _summary(t)


def _summary(t) -> dict:
    return {"id": t.id, "decision": t.decision, "reason": t.reason, "source": t.source,
            "first": t.first, "last": t.last, "frames": len(t.frames)}


def follow(frame_at, n_frames: int, detector, index: int, box: Box, reach: int = 90, low: float = 0.1,
           coast: int = 5) -> list[FrameBox]:
    """From one drawn box, the face followed forward and backward: on each next frame the
    detector looks in a window around the last box; the best-overlapping face (IoU >= 0.3)
    moves the box, else it stays put for up to ``coast`` frames and the track ends there."""
    out = {index: FrameBox(index=index, box=tuple(f32(v) for v in box), source="keyframe")}
    for step in (1, -1):
        last, missed, j = np.array(box, np.float32), 0, index + step
        while 0 <= j < n_frames and abs(j - index) <= reach:
            found = detector.detect_rois(frame_at(j), last[None], low)
            iou = box_iou(found.xyxy, last[None])[:, 0] if len(found) else np.zeros(0)
            if len(iou) and iou.max() >= 0.3:
                last, missed = found.xyxy[int(iou.argmax())].copy(), 0
                out[j] = FrameBox(index=j, box=tuple(f32(v) for v in last), score=f32(found.scores[int(iou.argmax())]),
                                  source="followed")
            else:
                missed += 1
                if missed > coast:
                    break
                out[j] = FrameBox(index=j, box=tuple(f32(v) for v in last), interpolated=True, source="followed")
            j += step
    return [out[i] for i in sorted(out)]



def resolve_follows(plan: Plan, frame_at, detector) -> dict[int, tuple[int, int]]:
    """Follow every manual track that asks for it (``follow: true``, one keyframe), in place:
    its frames become the followed ones and the request is cleared. ``frame_at(index)`` gives
    a frame in display orientation (:class:`veil.io.frame_source.FrameSource`). Returns
    track id -> (first, last) frame followed."""
    done = {}
    for t in plan.tracks:
        if t.follow:
            kf = t.keyframes[0]
            t.frames = follow(frame_at, plan.input.frames, detector, kf.index, kf.box)
            t.follow = None
            done[t.id] = (t.first, t.last)
    return done
