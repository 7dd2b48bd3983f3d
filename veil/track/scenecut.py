"""Scene-cut detection: tracks must not carry a mask (or an identity) across an edit.

A cut is declared when the colour content of a small thumbnail changes abruptly between two
consecutive frames: the thumbnail is split into 2 x 2 cells, each cell gets a coarse
hue/saturation histogram (8 x 4 bins), and the score is the mean Bhattacharyya distance of
the cells' histograms.

Why cells and coarse bins (measured on the evaluation clips, docs/benchmarks.md §4): one
histogram of the whole frame missed the cut from a wide stage shot to a dark close-up in the
hamilton clip (distance 0.41, threshold 0.5), because both shots share the same dark palette,
only arranged differently; the tracker then carried one track from one person onto another's
face, so a "keep" on the first would have kept the second unreviewed. Per-cell histograms see
where the colours are; coarse bins keep a pan, a camera jerk or motion blur (which shift
colours between neighbouring fine bins) low. The three hamilton cuts score 0.42-0.49, the
highest frame pair of the no-cut clips (a camera jerk in egoblur_portrait) 0.17. A plain
difference of grey thumbnails does not separate them (the jerk differs as much as the cut).
The thumbnail keeps this at well under a millisecond per frame whatever the resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SceneCutDetector"]


class SceneCutDetector:
    """Call :meth:`update` once per frame, in order; ``segment`` counts the cuts so far.

    Args:
        threshold: mean per-cell Bhattacharyya distance above which a frame starts a new scene.
        size: longer side of the thumbnail, in pixels.
        grid: cells per side.
    """

    def __init__(self, threshold: float = 0.3, size: int = 64, grid: int = 2):
        self.threshold = threshold
        self.size = size
        self.grid = grid
        self._prev: list[np.ndarray] | None = None
        self.segment = 0
        self.last_score = 0.0

    def _hists(self, frame: np.ndarray) -> list[np.ndarray]:
        h, w = frame.shape[:2]
        s = self.size / max(h, w)
        thumb = cv2.resize(frame, (max(self.grid, round(w * s)), max(self.grid, round(h * s))),
                           interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
        th, tw = hsv.shape[:2]
        g = self.grid
        out = []
        for r in range(g):
            for c in range(g):
                cell = np.ascontiguousarray(hsv[th * r // g:th * (r + 1) // g, tw * c // g:tw * (c + 1) // g])
                hist = cv2.calcHist([cell], [0, 1], None, [8, 4], [0, 180, 0, 256])
                out.append(cv2.normalize(hist, hist).flatten())
        return out

    @property
    def features(self) -> list[np.ndarray] | None:
        """The last frame's cell histograms (None before the first frame): a segmented run
        compares the last frame of one segment with the first of the next with :meth:`score`."""
        return self._prev

    def score(self, a: list[np.ndarray], b: list[np.ndarray]) -> float:
        """Mean per-cell Bhattacharyya distance, 0 (same colours in each cell) to 1."""
        return float(np.mean([cv2.compareHist(p, q, cv2.HISTCMP_BHATTACHARYYA) for p, q in zip(a, b)]))

    def update(self, frame: np.ndarray) -> bool:
        """True if ``frame`` starts a new scene (the first frame does not)."""
        hists = self._hists(frame)
        prev, self._prev = self._prev, hists
        if prev is None:
            return False
        self.last_score = self.score(prev, hists)
        cut = self.last_score > self.threshold
        if cut:
            self.segment += 1
        return cut
