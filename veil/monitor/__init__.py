"""Monitoring: per-job statistics that show drift in what veil is given (brightness, blur,
face sizes, detector scores, faces per frame, tracker gaps, low-light passes), stored per
job, and their comparison between two windows (PSI and a KS test) with alerts."""

from .drift import DriftReport, compare
from .stats import STATISTICS, FaceWatcher, JobStats, collect_item
from .store import MonitorStore

__all__ = ["DriftReport", "FaceWatcher", "JobStats", "MonitorStore", "STATISTICS", "collect_item", "compare"]
