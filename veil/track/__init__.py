"""Temporal consistency for video: tracking, coasting, look-ahead gap filling, scene cuts."""

from ..faces import SOURCE
from .lookahead import Buffered, Lookahead
from .scenecut import SceneCutDetector
from .tracker import Tracker, box_iou

__all__ = ["Buffered", "Lookahead", "SOURCE", "SceneCutDetector", "Tracker", "box_iou"]
