"""The redaction plan: everything veil decided for one media file, as a document a person can edit.

Analysis and rendering are two steps joined by this plan (``veil analyze`` writes it,
``veil render`` obeys it, the review app edits it). It is JSON on disk, validated by the
pydantic models below; ``docs/plan.schema.json`` is :func:`json_schema` exported.

* ``input`` pins the media file: sha256, size, frame count, fps and every frame's
  timestamp. A plan is only ever rendered onto the file it was made for.
* ``tracks``: one entry per face track, with ``id``, ``decision`` (``anonymize``/``keep``),
  ``reason``, ``source`` (``detected``/``manual``) and ``frames``, per-frame entries
  ``{"index", "box", "score", "interpolated"}`` (boxes in display orientation, pixels of the
  full frame, ``x1, y1, x2, y2``). Landmarks, identity and distance ride along when known.
  A tracker track whose decision changed mid-way (an identity confirmed after a few
  frames) is split into one plan track per run, sharing ``group``.
* Manual tracks may give ``keyframes`` only: the frames in between are filled by linear
  interpolation when the plan is loaded (:meth:`Track.filled`). A manual track with one
  keyframe and ``"follow": true`` asks for the face to be followed forward and backward
  from that box; whoever has the media resolves it (``veil render``, the review app) with
  :func:`veil.plan_edits.resolve_follows`.

Floats are written with the shortest text that reads back to the same float32, so a plan
renders bit-identically to the one-pass ``veil anonymize``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

__all__ = ["PLAN_VERSION", "Plan", "Track", "FrameBox", "Keyframe", "InputInfo", "load_plan", "save_plan",
           "json_schema", "f32", "PlanError", "interpolate_keyframes"]

PLAN_VERSION: Literal[1] = 1

Box = tuple[float, float, float, float]


class PlanError(ConfigError):
    """A plan that is invalid, or made for another file."""


def f32(x: float) -> float:
    """The shortest float that reads back as the same float32 (compact and exact JSON)."""
    return float(str(np.float32(x)))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_box(box: Box) -> Box:
    if not all(math.isfinite(v) for v in box):
        raise ValueError(f"box {list(box)} has a non-finite coordinate")
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"box {list(box)} is empty (needs x2 > x1 and y2 > y1)")
    return box


class FrameBox(_Model):
    """One face in one frame."""

    index: int = Field(ge=0, description="frame number, 0-based")
    box: Box = Field(description="x1, y1, x2, y2 in pixels of the full frame, display orientation")
    score: float = Field(1.0, description="detector confidence; 1 for manual boxes")
    interpolated: bool = Field(False, description="not observed by the detector in this frame")
    source: Optional[str] = Field(None, description="detected (default), low, coasted, interpolated, extended, "
                                                    "keyframe, followed")
    landmarks: Optional[list[tuple[float, float]]] = Field(None, description="5 points (eyes, nose, mouth corners)")
    identity: Optional[str] = None
    distance_m: Optional[float] = None

    @field_validator("box")
    @classmethod
    def _valid_box(cls, v: Box) -> Box:
        return _check_box(v)

    @field_validator("landmarks")
    @classmethod
    def _five(cls, v):
        if v is not None and len(v) != 5:
            raise ValueError("landmarks must be 5 points")
        return v


class Keyframe(_Model):
    """A box a person drew on one frame (manual tracks)."""

    index: int = Field(ge=0)
    box: Box

    @field_validator("box")
    @classmethod
    def _valid_box(cls, v: Box) -> Box:
        return _check_box(v)


class Track(_Model):
    id: int = Field(ge=0)
    decision: Literal["anonymize", "keep"]
    reason: str = ""
    source: Literal["detected", "manual"] = "detected"
    frames: list[FrameBox] = Field(default_factory=list)
    keyframes: list[Keyframe] = Field(default_factory=list, description="manual tracks: the drawn boxes; frames "
                                      "between them are interpolated when ``frames`` is empty")
    group: Optional[int] = Field(None, description="tracker id: plan tracks split from one tracker track share it")
    identity: Optional[str] = None
    distance_m: Optional[float] = None
    follow: Optional[bool] = Field(None, description="manual tracks: follow the face forward and backward from "
                                   "the one keyframe (veil render does, with the plan's detector); cleared once "
                                   "followed")

    @model_validator(mode="after")
    def _filled_and_ordered(self) -> "Track":
        if self.follow:
            if self.source != "manual" or len(self.keyframes) != 1:
                raise ValueError(f"track {self.id}: follow needs a manual track with exactly one keyframe")
            if any(f.index != self.keyframes[0].index for f in self.frames):
                raise ValueError(f"track {self.id}: a track to follow gives its keyframe, not frames")
        if not self.frames and self.keyframes:
            self.frames = interpolate_keyframes(self.keyframes)
        idx = [f.index for f in self.frames]
        if any(b <= a for a, b in zip(idx, idx[1:])):
            raise ValueError(f"track {self.id}: frame indices must be strictly increasing")
        if not self.frames:
            raise ValueError(f"track {self.id}: no frames (give frames or keyframes)")
        return self

    @property
    def first(self) -> int:
        return self.frames[0].index

    @property
    def last(self) -> int:
        return self.frames[-1].index


class InputInfo(_Model):
    """The media file a plan belongs to."""

    name: str = Field(description="file name when analysed (informative; sha256 identifies the file)")
    kind: Literal["image", "video"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, description="bytes")
    width: int = Field(gt=0, description="frame width in display orientation")
    height: int = Field(gt=0)
    frames: int = Field(gt=0, description="frame count (1 for images)")
    fps: Optional[float] = None
    timestamps: list[float] = Field(description="presentation time of each frame, seconds")

    @model_validator(mode="after")
    def _one_time_per_frame(self) -> "InputInfo":
        if len(self.timestamps) != self.frames:
            raise ValueError(f"{len(self.timestamps)} timestamps for {self.frames} frames")
        return self


class Plan(_Model):
    version: Literal[1] = PLAN_VERSION
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    veil_version: str = ""
    input: InputInfo
    models: dict[str, Any] = Field(default_factory=dict, description="model ids (name, sha256) used by the analysis")
    settings: dict[str, Any] = Field(default_factory=dict, description="veil's full config at analysis")
    tracks: list[Track] = Field(default_factory=list)

    @model_validator(mode="after")
    def _inside(self) -> "Plan":
        ids = [t.id for t in self.tracks]
        if len(set(ids)) != len(ids):
            raise ValueError("track ids must be unique")
        w, h, n = self.input.width, self.input.height, self.input.frames
        for t in self.tracks:
            for f in t.frames:
                if f.index >= n:
                    raise ValueError(f"track {t.id}: frame {f.index} is past the last frame ({n - 1})")
                x1, y1, x2, y2 = f.box
                # drawn boxes must show something; a detected track may coast off the edge
                if t.source == "manual" and (x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h):
                    raise ValueError(f"track {t.id}: box {list(f.box)} at frame {f.index} lies outside the "
                                     f"{w}x{h} frame")
        return self

    # -- reading ---------------------------------------------------------------------------
    def track(self, track_id: int) -> Track:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise PlanError(f"no track {track_id} in the plan")

    def next_id(self) -> int:
        return max((t.id for t in self.tracks), default=-1) + 1

    def boxes_by_frame(self, decision: str = "anonymize") -> dict[int, list[FrameBox]]:
        """Frame index -> the boxes of tracks with this decision (what render draws)."""
        out: dict[int, list[FrameBox]] = {}
        for t in self.tracks:
            if t.decision == decision:
                for f in t.frames:
                    out.setdefault(f.index, []).append(f)
        return out

    def check_matches(self, sha256: str, size: int | None = None) -> None:
        """Refuse to apply this plan to another file."""
        if sha256 != self.input.sha256:
            raise PlanError(f"the plan was made for another file ({self.input.name}, sha256 "
                            f"{self.input.sha256[:12]}...), not this one (sha256 {sha256[:12]}...)")
        if size is not None and size != self.input.size:
            raise PlanError(f"the plan was made for a file of {self.input.size} bytes, this one has {size}")

    # -- editing (each returns nothing; validate() after a batch of edits) ------------------
    def set_decision(self, track_id: int, decision: str, reason: str) -> None:
        t = self.track(track_id)
        if decision not in ("anonymize", "keep"):
            raise PlanError(f"decision must be anonymize or keep, not {decision!r}")
        t.decision, t.reason = decision, reason  # type: ignore[assignment]

    def trim(self, track_id: int, first: int, last: int) -> None:
        t = self.track(track_id)
        kept = [f for f in t.frames if first <= f.index <= last]
        if not kept:
            raise PlanError(f"trimming track {track_id} to {first}..{last} leaves no frame (delete it instead)")
        t.frames = kept
        t.keyframes = [k for k in t.keyframes if first <= k.index <= last]

    def delete(self, track_id: int) -> None:
        t = self.track(track_id)
        self.tracks.remove(t)

    def merge(self, track_ids: list[int]) -> Track:
        """One track from several (the same person); on a shared frame the union box is used.
        The merged track is anonymized if any part was (privacy wins)."""
        parts = [self.track(i) for i in track_ids]
        if len(parts) < 2:
            raise PlanError("merge needs at least two tracks")
        by_index: dict[int, FrameBox] = {}
        for p in parts:
            for f in p.frames:
                old = by_index.get(f.index)
                if old is None:
                    by_index[f.index] = f
                else:
                    box = (min(old.box[0], f.box[0]), min(old.box[1], f.box[1]),
                           max(old.box[2], f.box[2]), max(old.box[3], f.box[3]))
                    by_index[f.index] = old.model_copy(update={"box": box, "landmarks": None,
                                                               "score": min(old.score, f.score)})
        anon = any(p.decision == "anonymize" for p in parts)
        keep_reason = next((p.reason for p in parts if p.decision == "anonymize"), parts[0].reason)
        merged = Track(id=parts[0].id, decision="anonymize" if anon else "keep", reason=keep_reason,
                       source="manual" if any(p.source == "manual" for p in parts) else "detected",
                       frames=[by_index[i] for i in sorted(by_index)], group=parts[0].group,
                       identity=parts[0].identity, distance_m=parts[0].distance_m)
        pos = self.tracks.index(parts[0])
        for p in parts:
            self.tracks.remove(p)
        self.tracks.insert(pos, merged)
        return merged

    def add_manual(self, keyframes: list[tuple[int, Box]], reason: str = "added by a reviewer",
                   frames: list[FrameBox] | None = None) -> Track:
        """A manual (anonymized) track: from keyframes by interpolation, or from given frames."""
        try:
            kfs = [Keyframe(index=i, box=tuple(map(float, b))) for i, b in sorted(keyframes)]
        except ValidationError as exc:
            raise PlanError(f"invalid box: {exc.errors()[0]['msg']}") from None
        self._check_manual_boxes(kfs)
        if len({k.index for k in kfs}) != len(kfs):
            raise PlanError("two keyframes on one frame")
        t = Track(id=self.next_id(), decision="anonymize", reason=reason, source="manual",
                  frames=frames or [], keyframes=kfs)
        self.tracks.append(t)
        return t

    def check_boxes(self, boxes: list[tuple[int, Box]]) -> None:
        self._check_manual_boxes([Keyframe(index=i, box=tuple(map(float, b))) for i, b in boxes])

    def _check_manual_boxes(self, kfs: list[Keyframe]) -> None:
        """A drawn box must lie inside the frame (a small tolerance for rounding)."""
        w, h, n = self.input.width, self.input.height, self.input.frames
        for k in kfs:
            x1, y1, x2, y2 = k.box
            if k.index >= n:
                raise PlanError(f"frame {k.index} is past the last frame ({n - 1})")
            if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
                raise PlanError(f"box {list(k.box)} lies outside the {w}x{h} frame")

    def validated(self) -> "Plan":
        """Re-run every check (after edits made in place)."""
        return parse_plan(self.model_dump(mode="json"))


def interpolate_keyframes(keyframes: list[Keyframe]) -> list[FrameBox]:
    """Every frame from the first keyframe to the last, boxes linearly interpolated."""
    kfs = sorted(keyframes, key=lambda k: k.index)
    out: list[FrameBox] = []
    for a, b in zip(kfs, kfs[1:]):
        if b.index == a.index:
            raise ValueError(f"two keyframes at frame {a.index}")
        for i in range(a.index, b.index):
            t = (i - a.index) / (b.index - a.index)
            box = tuple(f32(x + (y - x) * t) for x, y in zip(a.box, b.box))
            out.append(FrameBox(index=i, box=box, interpolated=i != a.index,
                                source="keyframe" if i == a.index else "interpolated"))
    last = kfs[-1]
    out.append(FrameBox(index=last.index, box=tuple(f32(v) for v in last.box), source="keyframe"))
    return out


def parse_plan(data: Any, where: str = "plan") -> Plan:
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PlanError(f"{where}: invalid plan at {loc or 'top level'}: {err['msg']}{more}") from None


def load_plan(path: str | Path) -> Plan:
    from .io.jsonfile import load_json

    return parse_plan(load_json(path, "plan"), str(path))


def dumps(plan: Plan) -> str:
    return plan.model_dump_json(exclude_none=True, indent=None)


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write atomically (a reader never sees half a plan)."""
    from .io.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(dumps(plan), encoding="utf-8")


def json_schema() -> str:
    """The JSON Schema of a plan, as committed in docs/plan.schema.json."""
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "veil redaction plan"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


