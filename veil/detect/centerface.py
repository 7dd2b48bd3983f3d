"""CenterFace (Xu et al. 2019), the ONNX file shipped in veil's own package (``veil/models``).

An anchor-free one-stage detector: a stride-4 heatmap of face centres plus per-cell box
size, sub-cell offset and 5 landmarks. Decoding is vectorised over all cells above the
score floor. Input is RGB in 0..255, NCHW float32.
"""

from __future__ import annotations

import numpy as np

from ..faces import Faces
from .base import GridDetector

__all__ = ["CenterFace"]


class CenterFace(GridDetector):
    name = "centerface"
    stride = 32
    dynamic_inputs = {"input.1": ["B", 3, "H", "W"]}
    dynamic_outputs = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"],
                       "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)

    def decode(self, outputs: list[np.ndarray], min_score: float, input_hw: tuple[int, int]) -> list[Faces]:
        heat, scale, offset, lms = outputs
        found = []
        for b in range(heat.shape[0]):
            ys, xs = np.nonzero(heat[b, 0] > min_score)
            if len(ys) == 0:
                found.append(Faces.empty())
                continue
            score = heat[b, 0, ys, xs]
            bh = np.exp(scale[b, 0, ys, xs]) * 4
            bw = np.exp(scale[b, 1, ys, xs]) * 4
            cy = (ys + offset[b, 0, ys, xs] + 0.5) * 4
            cx = (xs + offset[b, 1, ys, xs] + 0.5) * 4
            x1, y1 = cx - bw / 2, cy - bh / 2
            xyxy = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)
            lm = lms[b][:, ys, xs].T.reshape(-1, 5, 2)  # (n, 5, [dy, dx])
            points = np.stack([lm[:, :, 1] * bw[:, None] + x1[:, None], lm[:, :, 0] * bh[:, None] + y1[:, None]], axis=2)
            found.append(Faces(xyxy=xyxy, scores=score, landmarks=points))
        return found
