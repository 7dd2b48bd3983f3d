"""Filters that do not anonymize: ``none`` (pass-through) and ``debug`` (boxes and scores).

They exist for checking detections and for reports; the CLI warns when they are used,
since their output still shows every face.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..faces import Faces

__all__ = ["NoFilter", "Debug"]


class NoFilter:
    name = "none"
    anonymizes = False

    def __init__(self, **_):
        pass

    def apply(self, frame: np.ndarray, faces: Faces) -> np.ndarray:
        return frame.copy()


class Debug:
    name = "debug"
    anonymizes = False

    def __init__(self, **_):
        pass

    def apply(self, frame: np.ndarray, faces: Faces) -> np.ndarray:
        out = frame.copy()
        thick = max(1, round(max(frame.shape[:2]) / 500))
        for i in range(len(faces)):
            x1, y1, x2, y2 = (int(round(v)) for v in faces.xyxy[i])
            color = (255, 0, 0) if faces.to_anonymize[i] else (0, 200, 0)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
            label = f"{faces.scores[i]:.2f}"
            if faces.track_id[i] >= 0:
                label = f"#{faces.track_id[i]} {label}"
            cv2.putText(out, label, (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, color, thick)
            for x, y in faces.landmarks[i]:
                if not np.isnan(x):
                    cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, (255, 255, 0), -1)
        return out
