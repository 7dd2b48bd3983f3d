"""The detector protocol, and the shared machinery of single-shot ONNX face detectors.

A detector takes a batch of RGB frames and returns one :class:`~veil.faces.Faces` per frame,
in frame pixels, with scores down to ``min_score``. That is the whole protocol
(:class:`Detector`); the pipeline knows nothing else about detectors.

:class:`GridDetector` does the work common to one-stage detectors (CenterFace, YOLOv8-face,
SCRFD, YuNet, RetinaFace): resize to the detection resolution, pad to the network stride,
run frames of one size as one batch, optionally add full-resolution tiles so that small
faces in large frames are not lost, and merge everything with NMS. A new detector
subclasses it and implements :meth:`GridDetector.preprocess` and :meth:`GridDetector.decode`.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from ..faces import Faces
from .nms import nms

__all__ = ["Detector", "GridDetector", "Resolution"]


@runtime_checkable
class Detector(Protocol):
    name: str
    model_sha256: str

    def detect(self, frames: Sequence[np.ndarray], min_score: float) -> list[Faces]:
        """Faces with ``score >= min_score`` in each RGB uint8 frame."""
        ...

    def detect_rois(self, frame: np.ndarray, boxes: np.ndarray, min_score: float) -> Faces:
        """Faces in windows around known positions only (the tracker's, between detector frames)."""
        ...

    def max_windows(self, h: int, w: int) -> int:
        """How many such windows cost less than detecting on the whole ``h`` x ``w`` frame."""
        ...


class Resolution:
    """Where a frame is resized to before detection.

    ``max_side`` is the long side in pixels (0 = native). Frames are never upscaled. Both
    sides are then padded (not stretched) up to a multiple of ``stride``.
    """

    def __init__(self, max_side: int, stride: int = 32):
        self.max_side = max_side
        self.stride = stride

    def scale(self, h: int, w: int) -> float:
        if self.max_side <= 0 or max(h, w) <= self.max_side:
            return 1.0
        return self.max_side / max(h, w)

    def padded(self, h: int, w: int) -> tuple[int, int]:
        s = self.stride
        return math.ceil(h / s) * s, math.ceil(w / s) * s


def _tiles(h: int, w: int, tile: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Overlapping ``(y0, x0, y1, x1)`` windows covering a frame."""
    if max(h, w) <= tile:
        return []
    step = max(1, int(tile * (1 - overlap)))

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        out = list(range(0, n - tile, step))
        return out + [n - tile]

    return [(y, x, min(y + tile, h), min(x + tile, w)) for y in starts(h) for x in starts(w)]


class GridDetector:
    """Base for one-stage ONNX detectors; see the module docstring."""

    name = "grid"
    stride = 32

    def __init__(self, session, model_sha256: str, max_side: int = 0, tile: bool = False,
                 tile_size: int = 640, nms_iou: float = 0.3, batch: int = 4):
        self.session = session
        self.model_sha256 = model_sha256
        self.source_model_sha256 = model_sha256  # the verified source model's (another when precision is int8)
        self.precision = "fp32"
        self.resolution = Resolution(max_side, self.stride)
        self.tile = tile
        self.tile_size = tile_size
        self.nms_iou = nms_iou
        self.batch = batch
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    # -- to implement per model -----------------------------------------------------
    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 RGB, padded -> network input tensor."""
        raise NotImplementedError

    def decode(self, outputs: list[np.ndarray], min_score: float, input_hw: tuple[int, int]) -> list[Faces]:
        """Network outputs -> one Faces per batch item, in padded-input pixels, before NMS.

        ``input_hw`` is the padded input's height and width (models whose outputs are flat
        lists of grid cells, like YuNet, need it to know the grid)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------
    def _run(self, images: list[np.ndarray], min_score: float) -> list[Faces]:
        """Run same-size images in batches; returns faces in those images' pixels."""
        h, w = images[0].shape[:2]
        ph, pw = self.resolution.padded(h, w)
        out: list[Faces] = []
        for i in range(0, len(images), self.batch):
            chunk = images[i : i + self.batch]
            padded = np.zeros((len(chunk), ph, pw, 3), np.uint8)
            for j, img in enumerate(chunk):
                padded[j, :h, :w] = img
            res = self.session.run(self.output_names, {self.input_name: self.preprocess(padded)})
            out.extend(self.decode(res, min_score, (ph, pw)))
        return out

    def _resized(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = frame.shape[:2]
        s = self.resolution.scale(h, w)
        if s == 1.0:
            return frame, 1.0
        size = (max(1, round(w * s)), max(1, round(h * s)))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), s

    def detect(self, frames: Sequence[np.ndarray], min_score: float) -> list[Faces]:
        if not len(frames):
            return []
        resized = [self._resized(f) for f in frames]
        # group frames by resized shape so that each group is one batched run
        results: list[Faces | None] = [None] * len(frames)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, (img, _) in enumerate(resized):
            by_shape.setdefault(img.shape[:2], []).append(i)
        for idx in by_shape.values():
            found = self._run([resized[i][0] for i in idx], min_score)
            for i, faces in zip(idx, found):
                s = resized[i][1]
                results[i] = faces.scaled(1 / s, 1 / s) if s != 1.0 else faces
        final = []
        for frame, result in zip(frames, results):
            assert result is not None
            faces = result
            if self.tile:
                faces = Faces.concatenate([faces, *self._detect_tiles(frame, min_score)])
            h, w = frame.shape[:2]
            faces = faces[nms(faces.xyxy, faces.scores, self.nms_iou)]
            final.append(faces.clipped(w, h))
        return final

    def detect_at(self, frame: np.ndarray, scale: float, min_score: float,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Faces:
        """One frame resized by ``scale`` (up or down, ignoring ``max_side``), optionally
        transformed (e.g. enhanced) at that size; faces in frame pixels, before NMS.

        The building block of test-time augmentation (see :mod:`veil.detect.augment`).
        """
        h, w = frame.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = frame if size == (w, h) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if transform is not None:
            img = transform(img)
        faces = self._run([np.ascontiguousarray(img)], min_score)[0]
        return faces.scaled(w / size[0], h / size[1])

    def max_windows(self, h: int, w: int, size: int = 160, share: float = 0.5) -> int:
        """How many ``size`` px windows cost less than one whole-frame pass on an ``h`` x ``w``
        frame: their pixels must stay under ``share`` of the whole pass's (small batches use
        the network less efficiently than one large input, hence the margin)."""
        s = self.resolution.scale(h, w)
        ph, pw = self.resolution.padded(round(h * s), round(w * s))
        return int(share * ph * pw // (size * size))

    def detect_rois(self, frame: np.ndarray, boxes: np.ndarray, min_score: float, size: int = 160,
                    context: float = 3.5) -> Faces:
        """Faces near known positions: a square window of ``context`` x each box, resized to
        ``size`` px, all windows in one batch; faces in frame pixels, after NMS.

        Why: between full detections a tracked face only needs to be found again where it is
        expected. A 160 px window costs a small fraction of a full frame, and the face in it
        is at a size the network handles well (small faces are upscaled). ``context`` 3.5 was
        the best of 2.5-5 on the motion-blurred OTB clip (tighter windows lose fast faces,
        wider ones shrink them); see docs/benchmarks.md §4.
        """
        h, w = frame.shape[:2]
        windows, origins = [], []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
            side = max(x2 - x1, y2 - y1, 8.0) * context
            x0, y0 = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
            cx0, cy0 = max(0, int(np.ceil(x0))), max(0, int(np.ceil(y0)))
            cx1, cy1 = min(w, int(np.floor(x0 + side))), min(h, int(np.floor(y0 + side)))
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue  # the predicted position left the frame
            s = size / side
            crop = cv2.resize(frame[cy0:cy1, cx0:cx1], (max(1, round((cx1 - cx0) * s)), max(1, round((cy1 - cy0) * s))),
                              interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            win = np.zeros((size, size, 3), np.uint8)
            ox, oy = min(size - 1, round((cx0 - x0) * s)), min(size - 1, round((cy0 - y0) * s))  # >= 0: cx0 >= x0
            ch, cw = min(size - oy, crop.shape[0]), min(size - ox, crop.shape[1])
            win[oy:oy + ch, ox:ox + cw] = crop[:ch, :cw]
            windows.append(win)
            origins.append((x0, y0, s))
        if not windows:
            return Faces.empty()
        found = [f.scaled(1 / s, 1 / s, x0, y0) for f, (x0, y0, s) in zip(self._run(windows, min_score), origins)]
        faces = Faces.concatenate(found)
        return faces[nms(faces.xyxy, faces.scores, self.nms_iou)].clipped(w, h)

    def _detect_tiles(self, frame: np.ndarray, min_score: float) -> list[Faces]:
        h, w = frame.shape[:2]
        windows = _tiles(h, w, self.tile_size)
        if not windows or self.resolution.scale(h, w) == 1.0:
            return []  # the whole frame already ran at native resolution
        found = []
        # tiles of equal size batch together; edge tiles are equal too with our layout
        crops = [np.ascontiguousarray(frame[y0:y1, x0:x1]) for y0, x0, y1, x1 in windows]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, c in enumerate(crops):
            by_shape.setdefault(c.shape[:2], []).append(i)
        for idx in by_shape.values():
            for i, faces in zip(idx, self._run([crops[i] for i in idx], min_score)):
                y0, x0 = windows[i][:2]
                found.append(faces.scaled(1, 1, x0, y0))
        return found
