"""Ground truth built in code for the WIDER evaluation tests (shared by two test files)."""

from __future__ import annotations

import numpy as np

from veil.io.wider_format import GtImage


def gt_image(path: str, boxes, invalid=None) -> GtImage:
    """One image's ground truth: ``boxes`` x, y, w, h; ``invalid`` flags per box (or None)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    attrs = np.zeros((len(boxes), 6), np.int64)
    if invalid is not None:
        attrs[:, 3] = invalid
    return GtImage(path=path, boxes=boxes, attributes=attrs)
