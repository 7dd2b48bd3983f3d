"""Non-maximum suppression, vectorised (OpenCV's C++ implementation)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["nms"]


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes to keep, highest score first."""
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).astype(np.float32)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float32).tolist(), 0.0, float(iou))
    return np.asarray(keep, np.int64).reshape(-1)
