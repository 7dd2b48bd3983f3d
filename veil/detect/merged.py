"""Two detectors on every frame, each at its own resolution, their faces merged by NMS.

Why: YuNet-n and CenterFace fail differently. YuNet-n at 1,280 px finds more small faces than
CenterFace at 1,280 px for under a third of the cost, but misses large faces CenterFace finds;
CenterFace at half that size finds those, cheaply. Together (``yunet+centerface``) they found
at least as many WIDER dev faces as CenterFace at 1,280 px at every difficulty, for about 0.6x
its cost and more false positives (docs/benchmarks.md §11). Passes only add faces, as the
augmentation passes do (:mod:`veil.detect.augment`).

The first pass leads: its resolution is the configured ``max_side``, and the others run at a
fixed fraction of it (``max_side`` x that fraction; of the native size when ``max_side`` is 0).
One pass (:data:`WINDOW_PASS`; yunet+centerface: CenterFace) finds faces again in windows
around tracks between full detections (``detect_rois``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..faces import Faces
from .base import GridDetector
from .nms import nms

__all__ = ["MergedDetector", "CASCADES", "WINDOW_PASS"]

#: name -> passes: (detector name, size relative to the first pass). Opt-in (``--detector``).
CASCADES: dict[str, tuple[tuple[str, float], ...]] = {
    "yunet+centerface": (("yunet", 1.0), ("centerface", 0.5)),
}

#: name -> index of the pass that looks for tracked faces in windows between full detections
#: (detect-every-k; default: the first). yunet+centerface: CenterFace, the network the window
#: size and context were tuned with (docs/benchmarks.md §4): with YuNet-n windows `fast` leaked 2
#: frames of the dark OTB Boy variant, with CenterFace's none (§11.1)
WINDOW_PASS: dict[str, int] = {"yunet+centerface": 1}


class MergedDetector:
    """A :class:`~veil.detect.base.Detector` made of several GridDetectors; see the module docstring."""

    def __init__(self, name: str, passes: Sequence[GridDetector], relative: Sequence[float], window_pass: int = 0):
        if len(passes) != len(relative) or not passes:
            raise ValueError("one relative size per pass")
        if not 0 <= window_pass < len(passes):
            raise ValueError(f"window_pass {window_pass} is not one of the {len(passes)} passes")
        #: index of the pass that runs :meth:`detect_rois` (see :data:`WINDOW_PASS`)
        self.window_pass = window_pass
        self.name = name
        self.passes = list(passes)
        self.relative = [float(r) for r in relative]
        self.lead = self.passes[0]
        #: every model's sha256, joined by "+" in pass order (the report names all of them)
        self.model_sha256 = "+".join(p.model_sha256 for p in self.passes)
        self.source_model_sha256 = "+".join(getattr(p, "source_model_sha256", p.model_sha256) for p in self.passes)

    # what the pipeline and AugmentedDetector read from a detector: the lead pass's
    @property
    def resolution(self):
        return self.lead.resolution

    @property
    def nms_iou(self) -> float:
        return self.lead.nms_iou

    @property
    def provider(self) -> str:
        return self.lead.provider

    @property
    def precision(self) -> str:
        return getattr(self.lead, "precision", "fp32")

    def _merge(self, parts: list[Faces], w: int, h: int) -> Faces:
        faces = Faces.concatenate(parts)
        return faces[nms(faces.xyxy, faces.scores, self.nms_iou)].clipped(w, h)

    def detect(self, frames: Sequence[np.ndarray], min_score: float) -> list[Faces]:
        found = [self._pass(p, r, frames, min_score) for p, r in zip(self.passes, self.relative)]
        return [self._merge([f[i] for f in found], fr.shape[1], fr.shape[0]) for i, fr in enumerate(frames)]

    @staticmethod
    def _pass(det: GridDetector, rel: float, frames: Sequence[np.ndarray], min_score: float) -> list[Faces]:
        if det.resolution.max_side > 0 or rel == 1.0:
            return det.detect(frames, min_score)
        # native resolution configured (max_side 0): this pass runs at ``rel`` x native
        out = []
        for f in frames:
            faces = det.detect_at(f, rel, min_score)
            out.append(faces[nms(faces.xyxy, faces.scores, det.nms_iou)].clipped(f.shape[1], f.shape[0]))
        return out

    def detect_at(self, frame: np.ndarray, scale: float, min_score: float,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Faces:
        """Every pass at ``scale`` times its relative size; before NMS, as GridDetector.detect_at."""
        return Faces.concatenate([p.detect_at(frame, scale * r, min_score, transform) for p, r in zip(self.passes, self.relative)])

    def detect_rois(self, frame: np.ndarray, boxes: np.ndarray, min_score: float, size: int = 160,
                    context: float = 3.5) -> Faces:
        return self.passes[self.window_pass].detect_rois(frame, boxes, min_score, size, context)

    def max_windows(self, h: int, w: int, size: int = 160, share: float = 0.5) -> int:
        # windows run on one pass, while a whole detection runs every pass: counted against the
        # lead's pixels (as measured in §11.1; CenterFace windows at 640 px still cost less than
        # a whole YuNet 640 + CenterFace 320 detection)
        return self.lead.max_windows(h, w, size, share)
