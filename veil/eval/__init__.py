"""Evaluation of veil against datasets with ground truth (``veil.eval.widerface``: WIDER FACE AP)."""

from .widerface import SETTINGS, evaluate, load_wider_dev, operating_point, read_difficulty, recall_at

__all__ = ["SETTINGS", "evaluate", "load_wider_dev", "operating_point", "read_difficulty", "recall_at"]
