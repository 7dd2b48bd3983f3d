"""YuNet-n (libfacedetection.train, Apache-2.0), the ONNX file shipped in ``veil/models``.

Why a second detector: YuNet-n is about a quarter of CenterFace's cost at the same input
size, finds as many hard (small) faces and fails on different ones, which makes it the
cheap pass of a cascade (docs/benchmarks.md §11).

An anchor-free one-stage detector with three heads (strides 8, 16, 32). Each head gives,
per grid cell in row-major order, a class score and an objectness (both already through a
sigmoid), a box as (centre offset in cells, log size in cells) and 5 landmarks as offsets
in cells. OpenCV's ``FaceDetectorYN`` scores this file sqrt(cls * obj); veil reports that
score to the power :data:`SCORE_POWER` (see there). Input is BGR in 0..255, NCHW float32,
sides multiples of 32.
"""

from __future__ import annotations

import numpy as np

from ..faces import Faces
from .base import GridDetector

__all__ = ["YuNet", "SCORE_POWER"]

#: YuNet's raw score is raised to this power so that veil's threshold means the same false
#: alarm rate for both detectors: on 300 WIDER dev images YuNet at 1,280 px reaches
#: CenterFace's false positives per image at threshold 0.2 (4.79) at a raw score of 0.366,
#: and 0.366 ** 1.6 = 0.2 (docs/benchmarks.md §11). Monotone, so YuNet's
#: own ranking (AP) is unchanged; it matters for the threshold and when boxes of both
#: detectors meet in one NMS (a raw YuNet score outranks an equally sure CenterFace box).
SCORE_POWER = 1.6


class YuNet(GridDetector):
    name = "yunet"
    stride = 32
    strides = (8, 16, 32)

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        # RGB -> BGR (the network was trained on OpenCV's BGR frames), NHWC -> NCHW
        return np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)

    def decode(self, outputs: list[np.ndarray], min_score: float, input_hw: tuple[int, int]) -> list[Faces]:
        named = dict(zip(self.output_names, outputs))
        ph, pw = input_hw
        per_item: list[list[Faces]] = [[] for _ in range(outputs[0].shape[0])]
        for s in self.strides:
            cls, obj = named[f"cls_{s}"][..., 0], named[f"obj_{s}"][..., 0]
            bbox, kps = named[f"bbox_{s}"], named[f"kps_{s}"]
            cols = pw // s
            score = (np.clip(cls, 0, 1) * np.clip(obj, 0, 1)) ** (SCORE_POWER / 2)
            for b in range(score.shape[0]):
                idx = np.flatnonzero(score[b] >= min_score)
                if len(idx) == 0:
                    continue
                gx, gy = (idx % cols).astype(np.float32), (idx // cols).astype(np.float32)
                d = bbox[b, idx]
                cx, cy = (gx + d[:, 0]) * s, (gy + d[:, 1]) * s
                bw, bh = np.exp(d[:, 2]) * s, np.exp(d[:, 3]) * s
                xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
                k = kps[b, idx].reshape(-1, 5, 2)
                points = np.stack([(k[:, :, 0] + gx[:, None]) * s, (k[:, :, 1] + gy[:, None]) * s], axis=2)
                per_item[b].append(Faces(xyxy=xyxy, scores=score[b, idx], landmarks=points))
        return [Faces.concatenate(parts) if parts else Faces.empty() for parts in per_item]
