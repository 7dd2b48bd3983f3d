"""Temporal consistency for video: tracking, coasting, look-ahead gap filling, scene cuts."""

from .lookahead import Buffered, Lookahead
from .scenecut import SceneCutDetector
from .tracker import SOURCE, Tracker, box_iou

__all__ = ["Buffered", "Lookahead", "SOURCE", "SceneCutDetector", "Tracker", "box_iou"]
