"""Exit 0 if OpenCV imports and works (the cv2 folder is shared by two wheels)."""

import sys

try:
    import cv2
    import numpy as np

    cv2.GaussianBlur(np.zeros((8, 8, 3), np.uint8), (3, 3), 1)
except Exception as exc:  # noqa: BLE001 - any failure means a broken install
    print(f"cv2 broken: {exc}", file=sys.stderr)
    sys.exit(1)
