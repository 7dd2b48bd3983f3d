"""A picture of each filter on a large face (NASA's public-domain astronaut photo, upscaled
so the face is ~350 px wide, where fixed-size filters fail): deface's 20-px mosaic and blur
beside veil's defaults. Writes docs/figures/filters_astronaut.png.

    python bench/filter_strip.py docs/figures/filters_astronaut.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data
from deface.deface import anonymize_frame
from PIL import Image

import veil


def main(out: Path) -> None:
    img = cv2.resize(skimage.data.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    anon = veil.Anonymizer(max_side=1024)
    faces = anon.detect(img)
    x1, y1, x2, y2 = faces.xyxy[0]
    cx, cy, s = (x1 + x2) / 2, (y1 + y2) / 2, 1.8 * max(x2 - x1, y2 - y1)
    crop = (slice(int(cy - s / 2), int(cy + s / 2)), slice(int(cx - s / 2), int(cx + s / 2)))
    dets = np.concatenate([faces.xyxy, faces.scores[:, None]], axis=1)

    def deface(kind: str) -> np.ndarray:
        frame = img.copy()
        anonymize_frame(dets, frame, mask_scale=1.3, replacewith=kind, ellipse=True, draw_scores=False,
                        replaceimg=None, mosaicsize=20)
        return frame

    panels = [img, deface("mosaic"), deface("blur"),
              veil.Anonymizer(filter="blur", max_side=1024).frame(img).frame,
              veil.Anonymizer(filter="pixelate", max_side=1024).frame(img).frame]
    tiles = [cv2.resize(np.ascontiguousarray(p[crop]), (300, 300), interpolation=cv2.INTER_AREA) for p in panels]
    labels = ["original", "deface mosaic 20px", "deface blur", "veil blur", "veil pixelate"]
    for t, label in zip(tiles, labels):
        cv2.rectangle(t, (0, 270), (300, 300), (255, 255, 255), -1)
        cv2.putText(t, label, (8, 292), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.hstack(tiles)).save(out)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/filters_astronaut.png"))
