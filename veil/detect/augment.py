"""Test-time augmentation and low-light passes around a detector (the ``thorough`` mitigations).

Each extra pass sees the frame differently and can find faces the plain pass misses:

- ``scales``: the frame resized by these factors of its *native* size (2.0 = upscaled
  twice), so that faces too small for the network's stride become detectable (WIDER hard
  is mostly faces under 32 px);
- ``flip``: the mirrored frame (the network is not exactly symmetric);
- ``low_light``: dark frames only, brightened and denoised (:mod:`veil.detect.lowlight`);
- ``rotations``: the frame turned by these clockwise angles (90, 180, 270), for faces that
  lie on their side *in the scene* (people lying down, a camera held sideways without a
  rotation tag): the network only finds roughly upright faces. Off by default; what it
  finds and costs is in docs/benchmarks.md (§9). (Video whose *file* says it is rotated
  is turned upright before detection anyway: :mod:`veil.io.orientation`.)

All detections are merged with the base detector's NMS (the low-light pass: NMS plus the union of the boxes a kept box folded in, see `_union`). Passes only add faces: a privacy
tool may hide a non-face, never show a face. What each pass buys and costs is measured in
docs/benchmarks.md (§8); the presets use the ones that paid off.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..boxes import box_iou
from ..faces import Faces
from .base import GridDetector
from .lowlight import LowLight
from .nms import nms

__all__ = ["AugmentedDetector", "mirror", "unturn", "turn_frame", "ROTATIONS", "MAX_PASS_SIDE"]

#: no pass runs on a frame larger than this (long side, px): upscaling a 4K frame would need
#: gigabytes of activations for faces that are already large enough
MAX_PASS_SIDE = 2560

#: only detections at least this confident widen a merged box (the tail kept for PR curves,
#: down to 0.02, would cost memory and time for masks nobody renders)
UNION_MIN_SCORE = 0.1

#: landmark order after a horizontal flip: the eyes and mouth corners swap sides
_FLIP_LANDMARKS = [1, 0, 2, 4, 3]


def mirror(faces: Faces, width: int) -> Faces:
    """Faces found in a horizontally flipped frame, mapped back to the original frame."""
    xyxy = faces.xyxy.copy()
    xyxy[:, [0, 2]] = width - faces.xyxy[:, [2, 0]]
    lm = faces.landmarks[:, _FLIP_LANDMARKS].copy()
    lm[..., 0] = width - lm[..., 0]
    return faces.with_columns(xyxy=xyxy, landmarks=lm)


#: clockwise angles a rotated pass may turn the frame by
ROTATIONS = (90, 180, 270)


def turn_frame(frame: np.ndarray, degrees_cw: int) -> np.ndarray:
    """The frame turned clockwise by a right angle (C-contiguous)."""
    return np.ascontiguousarray(np.rot90(frame, -(degrees_cw // 90) % 4))


def unturn(faces: Faces, degrees_cw: int, width: int, height: int) -> Faces:
    """Faces found in :func:`turn_frame` (``degrees_cw``) of a ``width`` x ``height`` frame,
    mapped back to that frame. Landmarks keep their order (a turn is not a mirror)."""
    def back(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if degrees_cw == 90:  # shown point (x', y') came from (y', H - x')
            return y, height - x
        if degrees_cw == 180:
            return width - x, height - y
        if degrees_cw == 270:
            return width - y, x
        raise ValueError(f"rotation must be one of {ROTATIONS}, got {degrees_cw}")

    (xa, ya), (xb, yb) = back(faces.xyxy[:, 0], faces.xyxy[:, 1]), back(faces.xyxy[:, 2], faces.xyxy[:, 3])
    xyxy = np.stack([np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)], axis=1)
    lx, ly = back(faces.landmarks[..., 0], faces.landmarks[..., 1])
    return faces.with_columns(xyxy=xyxy.astype(faces.xyxy.dtype), landmarks=np.stack([lx, ly], axis=-1).astype(faces.landmarks.dtype))


class AugmentedDetector:
    """A :class:`~veil.detect.base.Detector` that runs extra passes around a GridDetector."""

    def __init__(self, base: GridDetector, scales: Sequence[float] = (), flip: bool = False,
                 low_light: LowLight | None = None, rotations: Sequence[int] = ()):
        self.base = base
        self.scales = tuple(float(s) for s in scales)
        self.flip = flip
        self.rotations = tuple(int(r) for r in rotations)
        self.low_light = low_light
        self.name = base.name
        self.model_sha256 = base.model_sha256
        #: passes run on the last frames, for reports: {"flip": n, "scale 2.0": n, "low light": n}
        self.pass_counts: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:  # provider, precision, resolution, ... of the base
        return getattr(self.base, name)

    def _count(self, key: str) -> None:
        self.pass_counts[key] = self.pass_counts.get(key, 0) + 1

    def _union(self, merged: Faces) -> Faces:
        """NMS, then each kept box widened to the union of the boxes it suppressed.

        Used for the low-light pass only: the brightened frame moves a dark, blurred face's
        box by a few pixels, and masking the union hides the face wherever either pass put
        it. (Across scales the union is harmful: a box from another scale is a different
        size, and unions of them cost 0.08 AP hard on WIDER.) Only boxes of at least half
        the kept score widen it, so a weak stray box cannot inflate a mask.
        """
        kept = merged[nms(merged.xyxy, merged.scores, self.base.nms_iou)]
        rows = np.flatnonzero(kept.scores >= UNION_MIN_SCORE)  # masks that can matter, not the PR-curve tail
        cand = np.flatnonzero(merged.scores >= 0.5 * UNION_MIN_SCORE)
        if len(rows) == 0 or len(cand) == 0:
            return kept
        boxes = merged.xyxy[cand]
        folded = box_iou(kept.xyxy[rows], boxes) > self.base.nms_iou
        folded &= merged.scores[cand][None, :] >= 0.5 * kept.scores[rows][:, None]
        xyxy = kept.xyxy.copy()
        for c, (pick, fill) in enumerate(((np.min, np.inf), (np.min, np.inf), (np.max, -np.inf), (np.max, -np.inf))):
            col = np.where(folded, boxes[None, :, c], fill)
            xyxy[rows, c] = pick(np.concatenate([col, kept.xyxy[rows, c:c + 1]], axis=1), axis=1)
        return kept.with_columns(xyxy=xyxy)

    def pass_scales(self, h: int, w: int) -> list[float]:
        """The extra scales that run on an ``h`` x ``w`` frame.

        Each is capped so the pass stays within :data:`MAX_PASS_SIDE`, and dropped when it
        comes within 10 % of the plain pass's scale or of an earlier pass (same faces, twice
        the cost).
        """
        done = [self.base.resolution.scale(h, w)]
        out = []
        for s in self.scales:
            s = min(s, MAX_PASS_SIDE / max(h, w))
            if all(abs(s - d) > 0.1 * d for d in done):
                out.append(s)
                done.append(s)
        return out

    def detect(self, frames: Sequence[np.ndarray], min_score: float) -> list[Faces]:
        found = self.base.detect(frames, min_score)
        out = []
        for frame, faces in zip(frames, found):
            h, w = frame.shape[:2]
            parts = [faces]
            if self.flip:
                flipped = np.ascontiguousarray(frame[:, ::-1])
                parts.append(mirror(self.base.detect([flipped], min_score)[0], w))
                self._count("flip")
            for s in self.pass_scales(h, w):
                parts.append(self.base.detect_at(frame, s, min_score))
                self._count(f"scale {s:g}")
            for r in self.rotations:  # the plain pass's resolution, on the turned frame
                turned = self.base.detect([turn_frame(frame, r)], min_score)[0]
                parts.append(unturn(turned, r, w, h))
                self._count(f"rotated {r}")
            if len(parts) > 1:
                merged = Faces.concatenate(parts)
                faces = merged[nms(merged.xyxy, merged.scores, self.base.nms_iou)]
            if self.low_light is not None and self.low_light.is_dark(frame):
                s = self.base.resolution.scale(h, w)
                faces = self._union(Faces.concatenate([faces, self.base.detect_at(frame, s, min_score, self.low_light.enhance)]))
                self._count("low light")
            out.append(faces.clipped(w, h))
        return out
