"""The frame pipeline: detect -> policy -> render, in batches.

This is the one place where stages meet. The API and the CLI build a :class:`Pipeline` from
a :class:`~veil.config.Config` and feed it frames; they never call stages themselves.
Frames are RGB uint8. Every frame that leaves :meth:`Pipeline.run` went through detection:
if anything fails the exception propagates, and the writers discard their partial output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from .config import Config
from .detect import Detector, build_detector
from .faces import Faces
from .policy import AnonymizeAll, Policy
from .render import Filter, anonymizes, build_filter

__all__ = ["Pipeline", "FrameResult", "Timings"]


@dataclass
class Timings:
    """Seconds spent in each stage, summed over a run (for the report and benchmarks)."""

    detect: float = 0.0
    policy: float = 0.0
    render: float = 0.0
    frames: int = 0

    def as_dict(self) -> dict:
        return {"detect_s": round(self.detect, 3), "policy_s": round(self.policy, 3),
                "render_s": round(self.render, 3), "frames": self.frames}


@dataclass
class FrameResult:
    frame: np.ndarray  # the anonymized frame
    faces: Faces  # every face found, with decision and reason


@dataclass
class Pipeline:
    config: Config
    detector: Detector = None  # type: ignore[assignment]
    policy: Policy = None  # type: ignore[assignment]
    filter: Filter = None  # type: ignore[assignment]
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        if self.detector is None:
            self.detector = build_detector(self.config.detect, batch=self.config.video.batch)
        if self.policy is None:
            self.policy = AnonymizeAll(self.config.detect.threshold)
        if self.filter is None:
            self.filter = build_filter(self.config.render)

    @property
    def anonymizes(self) -> bool:
        return anonymizes(self.filter)

    def detect(self, frames: list[np.ndarray], min_score: float | None = None) -> list[Faces]:
        t = time.perf_counter()
        score = self.config.detect.threshold if min_score is None else min_score
        found = self.detector.detect(frames, score)
        self.timings.detect += time.perf_counter() - t
        return found

    def process(self, frames: list[np.ndarray]) -> list[FrameResult]:
        """Anonymize a batch of frames."""
        out = []
        for frame, faces in zip(frames, self.detect(frames)):
            t = time.perf_counter()
            faces = self.policy.decide(faces)
            t2 = time.perf_counter()
            rendered = self.filter.apply(frame, faces)
            self.timings.policy += t2 - t
            self.timings.render += time.perf_counter() - t2
            out.append(FrameResult(rendered, faces))
        self.timings.frames += len(frames)
        return out

    def run(self, frames: Iterable[np.ndarray], batch: int | None = None) -> Iterator[FrameResult]:
        """Anonymize a stream of frames, ``batch`` at a time, in order."""
        size = batch or self.config.video.batch
        buf: list[np.ndarray] = []
        for frame in frames:
            buf.append(frame)
            if len(buf) >= size:
                yield from self.process(buf)
                buf = []
        if buf:
            yield from self.process(buf)
