"""Leak metric for video: how often is a true face not hidden by the mask?

A face-frame *leaks* when less than ``min_cover`` (80 %) of the true face box is covered by
the union of the masks veil draws on that frame (the same ellipse or box geometry as the
renderer, from the faces whose decision is ``anonymize``). We report the leak rate over the
frames that have a face, and the longest run of consecutive leaked frames: a single leaked
frame is visible to anyone who pauses the video.

Ground truth comes as one box per line (OTB style ``x,y,w,h``; commas, tabs or spaces; a
line of zeros or NaN means no face in that frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CorruptMediaError, MediaNotFoundError
from ..faces import Faces
from ..render.mask import mask_regions

__all__ = ["read_boxes", "coverage", "LeakReport", "leak_report"]


def read_boxes(path: Path) -> list[np.ndarray | None]:
    """One ``x1, y1, x2, y2`` box (or None) per frame from an OTB-style file."""
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"{path}: no such file")
    boxes: list[np.ndarray | None] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        try:
            x, y, w, h = (float(p) for p in parts[:4])
            if len(parts) != 4:
                raise ValueError
        except ValueError:
            raise CorruptMediaError(f"{path}:{n}: expected 'x,y,w,h', got {line.strip()!r}") from None
        ok = np.isfinite([x, y, w, h]).all() and w > 0 and h > 0
        boxes.append(np.array([x, y, x + w, y + h], np.float32) if ok else None)
    return boxes


def coverage(box: np.ndarray, faces: Faces, frame_hw: tuple[int, int], shape: str = "ellipse",
             mask_scale: float = 1.5, head: bool = True) -> float:
    """Fraction of ``box`` (clipped to the frame) covered by the masks of faces to anonymize."""
    h, w = frame_hw
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return 1.0  # the true face is outside the frame: nothing to hide
    covered = np.zeros((y2 - y1, x2 - x1), bool)
    for r in mask_regions(faces, frame_hw, shape, mask_scale, head=head):
        ix1, iy1, ix2, iy2 = max(x1, r.x0), max(y1, r.y0), min(x2, r.x1), min(y2, r.y1)
        if ix2 <= ix1 or iy2 <= iy1:
            continue
        sub = r.alpha[iy1 - r.y0 : iy2 - r.y0, ix1 - r.x0 : ix2 - r.x0] > 0.5
        covered[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] |= sub
    return float(covered.mean())


@dataclass
class LeakReport:
    frames: int
    face_frames: int
    leaked: list[int] = field(default_factory=list)
    covers: list[float] = field(default_factory=list)

    @property
    def leak_rate(self) -> float:
        return len(self.leaked) / self.face_frames if self.face_frames else 0.0

    @property
    def longest_run(self) -> int:
        best = run = 0
        prev = None
        for i in self.leaked:
            run = run + 1 if prev is not None and i == prev + 1 else 1
            best, prev = max(best, run), i
        return best

    def as_dict(self) -> dict:
        return {"frames": self.frames, "face_frames": self.face_frames, "leaked_frames": len(self.leaked),
                "leak_rate": round(self.leak_rate, 5), "longest_leak_run": self.longest_run,
                "leaked_indices": self.leaked, "mean_cover": round(float(np.mean(self.covers)), 4) if self.covers else None}


def leak_report(per_frame: list[Faces], truth: list[np.ndarray | None], frame_hw: tuple[int, int],
                shape: str = "ellipse", mask_scale: float = 1.5, min_cover: float = 0.8, head: bool = True) -> LeakReport:
    """Compare the faces veil hid on each frame with the true boxes."""
    if len(truth) < len(per_frame):
        raise CorruptMediaError(f"ground truth has {len(truth)} boxes for {len(per_frame)} frames")
    rep = LeakReport(frames=len(per_frame), face_frames=0)
    for i, faces in enumerate(per_frame):
        box = truth[i]
        if box is None:
            continue
        rep.face_frames += 1
        c = coverage(box, faces, frame_hw, shape, mask_scale, head)
        rep.covers.append(c)
        if c < min_cover:
            rep.leaked.append(i)
    return rep
