"""Per-job statistics as histograms over fixed bins, so that any two sets of jobs can be
added up and compared.

Frame statistics are measured on up to :data:`MAX_FRAMES` frames of the job's *input*,
evenly spaced (decoding is cheap next to detection); face statistics are added up while the
run goes (:class:`FaceWatcher`, constant memory: geometry and scores only). A face-frame
"filled by the tracker" is one with a track id and no detector landmarks (a coasted or
interpolated box).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from ..detect.lowlight import LowLight

__all__ = ["STATISTICS", "MAX_FRAMES", "JobStats", "FaceWatcher", "FrameSample", "add_faces", "collect_item", "frame_brightness", "frame_blur"]

MAX_FRAMES = 120

#: name -> (bin edges, what it measures)
STATISTICS: dict[str, tuple[np.ndarray, str]] = {
    "brightness": (np.linspace(0, 256, 33), "mean luma of the frame (0-255)"),
    "blur": (np.linspace(0, 4.5, 31), "log10 variance of the Laplacian at 256 px width (lower = blurrier)"),
    "face_size": (np.array([0, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1e9]),
                  "face box height (px; a change of resolution shows here too)"),
    "score": (np.linspace(0, 1.0001, 21), "detector score of each detected face"),
    "faces_per_frame": (np.concatenate([np.arange(0, 11), [1e9]]) - 0.5, "faces found per frame"),
    "track_gap": (np.array([-0.5, 0.5, 1.5]), "face-frame filled by the tracker (1) or detected (0)"),
    "low_light": (np.array([-0.5, 0.5, 1.5]), "frame dark enough for the low-light pass (1) or not (0)"),
}


def frame_brightness(rgb: np.ndarray) -> float:
    """Mean luma of the thumbnail the low-light pass looks at."""
    return float(LowLight.thumbnail_luma(rgb).mean())


def frame_blur(rgb: np.ndarray) -> float:
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(cv2.resize(rgb, (256, max(1, round(256 * h / w))), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return float(np.log10(1.0 + cv2.Laplacian(gray, cv2.CV_32F).var()))


@dataclass
class JobStats:
    """Histogram counts per statistic (same bins as :data:`STATISTICS`)."""

    counts: dict[str, list[int]] = field(default_factory=lambda: {k: [0] * (len(e) - 1) for k, (e, _) in STATISTICS.items()})

    def add(self, name: str, values: Iterable[float]) -> None:
        edges = STATISTICS[name][0]
        v = np.clip(np.asarray(list(values), np.float64), edges[0], np.nextafter(edges[-1], -np.inf))
        if len(v):
            self.counts[name] = (np.asarray(self.counts[name]) + np.histogram(v, edges)[0]).astype(int).tolist()

    def __iadd__(self, other: "JobStats") -> "JobStats":
        for k in self.counts:
            self.counts[k] = (np.asarray(self.counts[k]) + np.asarray(other.counts.get(k, 0))).astype(int).tolist()
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"counts": self.counts}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobStats":
        s = cls()
        for k, v in d.get("counts", {}).items():
            if k in s.counts and len(v) == len(s.counts[k]):
                s.counts[k] = [int(x) for x in v]
        return s


class FaceWatcher:
    """Adds each frame's faces to its item's histograms while the run goes; attach with
    ``anon.report.on_item.append(watcher.attach)`` before the run. With ``config``, it also
    takes the frame statistics of a video's sampled input frames as the run decodes them,
    so that :func:`collect_item` need not decode the input a second time."""

    def __init__(self, config=None) -> None:
        self._stats: dict[int, JobStats] = {}
        self._frames: dict[int, FrameSample] = {}
        self.config = config

    def attach(self, item) -> None:
        stats = self._stats.setdefault(id(item), JobStats())
        item.observers.append(lambda faces: add_faces(stats, faces))
        if self.config is not None:
            sample = self._frames.setdefault(id(item), FrameSample(self.config))
            item.input_observers.append(sample.observe)

    def stats(self, item) -> JobStats:
        return self._stats.get(id(item), JobStats())

    def frames(self, item) -> "FrameSample | None":
        return self._frames.get(id(item))


def _step(n: int) -> int:
    """Every how many frames :func:`collect_item` samples a video of ``n`` frames."""
    return max(1, -(-n // MAX_FRAMES))


class FrameSample:
    """Brightness, blur and darkness of the frames :func:`_input_frames` would pick, taken from
    the run's own decode; the sampling step comes from the expected frame count, and
    :meth:`values` is None if the run's real count needs another step (then the input is read)."""

    def __init__(self, config) -> None:
        d = config.detect
        self.low_light, self.dark = d.low_light, LowLight(d.low_light_level, bright_end=d.low_light_bright_end)
        self.step: int | None = None
        self.rows: list[tuple[int, float, float, float]] = []

    def observe(self, i: int, rgb: np.ndarray, expected: int | None) -> None:
        if expected is None:
            return
        self.step = _step(expected)
        if i % self.step == 0:
            self.rows.append((i, frame_brightness(rgb), frame_blur(rgb), float(self.low_light and self.dark.is_dark(rgb))))

    def values(self, n: int) -> list[tuple[float, float, float]] | None:
        if self.step is None or self.step != _step(n):
            return None
        return [row[1:] for row in self.rows if row[0] < n]


def add_faces(s: JobStats, faces) -> None:
    """One frame's faces: count, box heights, detector scores, tracker-filled face-frames."""
    s.add("faces_per_frame", [len(faces)])
    if not len(faces):
        return
    xyxy = np.asarray(faces.xyxy, np.float64)
    s.add("face_size", xyxy[:, 3] - xyxy[:, 1])
    has_landmarks = np.asarray(~np.isnan(np.asarray(faces.landmarks, np.float64)).any(axis=(1, 2)))
    tracked = np.asarray(faces.track_id) >= 0
    s.add("score", np.asarray(faces.scores, np.float64)[has_landmarks | ~tracked])
    s.add("track_gap", (~has_landmarks[tracked]).astype(np.float64))


def _input_frames(item, config) -> Iterable[np.ndarray]:
    """Up to MAX_FRAMES evenly spaced frames of the item's input (the processed range)."""
    src = Path(item.input)
    if item.kind == "image":
        from ..io.images import read_image

        yield read_image(src, max_pixels=config.image.max_pixels).rgb
        return
    from ..io.video import read_frames

    n = item.counts["frames"]
    fps = (item.extra.get("video") or {}).get("fps") or 0
    skip = round((config.video.start or 0) * fps)
    step = max(1, -(-n // MAX_FRAMES))
    for i, rgb in enumerate(read_frames(src)):
        j = i - skip
        if j >= n:
            break
        if j >= 0 and j % step == 0:
            yield rgb


def collect_item(item, config, faces: JobStats | None = None, sample: FrameSample | None = None) -> JobStats:
    """The statistics of one finished item: frame statistics from its input (from ``sample``,
    the run's own decode, where it covers the item; else the input is read again), plus the
    face statistics a :class:`FaceWatcher` added up during the run."""
    s = JobStats()
    if faces is not None:
        s += faces
    rows = sample.values(item.counts["frames"]) if sample is not None and item.kind == "video" else None
    if rows is not None:
        s.add("brightness", (r[0] for r in rows))
        s.add("blur", (r[1] for r in rows))
        s.add("low_light", (r[2] for r in rows))
        return s
    frames = list(_input_frames(item, config))
    s.add("brightness", (frame_brightness(f) for f in frames))
    s.add("blur", (frame_blur(f) for f in frames))
    d = config.detect
    dark = LowLight(d.low_light_level, bright_end=d.low_light_bright_end)
    s.add("low_light", (float(d.low_light and dark.is_dark(f)) for f in frames))
    return s
