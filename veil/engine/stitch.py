"""One plan for the whole file from the segments' detections: tracking replayed in one pass.

Why not track each segment and match the tracks at the seams (by IoU in an overlap)? Because
the tracker and the look-ahead carry state across any cut we make: a face's smoothed box,
its coasting after a miss, the gap filled backwards from a detection on the other side, a
link from a lost track to a new one. Matching partial tracks can only approximate that, and
every approximation is a place where a face can show for a frame at a seam. Detection is
where the time goes (and it is per frame); the tracker, look-ahead and policy cost about 1 %
of a run (7-20 ms a frame against the detector's 1.3 s on the loaded 2-core test machine,
docs/benchmarks.md, "Long videos in segments"). So segments detect in parallel, and this module feeds their
detections, in file order, through the *same* tracking code the local path runs
(:class:`veil.pipeline._VideoRun`), with the scene cuts the segments measured. The plan that
comes out is the local ``veil analyze``'s, track for track, decision for decision, box for
box; the seams do not exist for it, so no overlap is needed.

The replay sees no pixels: each frame is a zero-stride stand-in of the frame's size (the
look-ahead's memory bound counts frame bytes). That is why configs whose stages need the
pixels after detection (identity, distance) or whose detection depends on the tracker
(detect-every-k) are refused by :func:`check_config`.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..config import Config
from ..errors import ConfigError, ProcessingError
from ..faces import Faces
from .segment_tasks import Detections, low_threshold

__all__ = ["check_config", "replay_plan"]


def check_config(config: Config) -> None:
    """Refuse settings whose analysis cannot be split (one line each, before any work)."""
    if config.identify.active or config.depth.active:
        raise ConfigError("segmented runs do not support identity or distance rules yet (their stages need "
                          "every frame in order); use the local engine")
    if config.track.tracking and config.track.detect_every != 1:
        raise ConfigError("segmented runs need --detect-every 1 (with detect-every-k the tracker decides where "
                          "to detect, which cannot be split); use the local engine")
    if config.video.start is not None or config.video.end is not None:
        raise ConfigError("segmented runs do not trim (start/end); use the local engine")


class _ReplayDetector:
    """Hands back the segments' detections, in order, as the detector would have."""

    name = "replay"

    def __init__(self, faces: Iterator[Faces], min_score: float):
        self._faces = faces
        self._min_score = min_score

    def detect(self, frames: Sequence[np.ndarray], min_score: float) -> list[Faces]:
        if min_score != self._min_score:
            raise ProcessingError(f"replay asked for score {min_score}, detected at {self._min_score}")
        return [next(self._faces) for _ in frames]


class _ReplayCuts:
    """The segments' scene cuts, in order, in the shape of a SceneCutDetector."""

    def __init__(self, cuts: Iterator[bool]):
        self._cuts = cuts
        self.segment = 0

    def update(self, frame: np.ndarray) -> bool:
        cut = next(self._cuts)
        self.segment += cut
        return cut


def _cuts(config: Config, parts: list[Detections]) -> Iterator[bool]:
    """Every frame's cut flag; a segment's first frame is compared with the last of the one before."""
    from ..track import SceneCutDetector

    scorer = SceneCutDetector(config.track.scene_cut)
    prev = None
    for part in parts:
        for j, cut in enumerate(part.cuts):
            if j == 0 and prev is not None and part.first_features is not None:
                cut = scorer.score(prev, part.first_features) > config.track.scene_cut
            yield bool(cut)
        prev = part.last_features


def replay_plan(config: Config, parts: list[Detections], fps: float | None):
    """The plan tracks (:class:`veil.plan.Track`) of the file whose segments gave ``parts``."""
    from ..pipeline import Pipeline, _VideoRun
    from ..plan_faces import PlanCollector
    from ..stages import Item

    faces = (f for part in parts for f in part.faces)
    pipeline = Pipeline(config, detector=_ReplayDetector(faces, low_threshold(config)))  # type: ignore[arg-type]
    h, w = parts[0].shape
    total = sum(len(p.faces) for p in parts)
    stand_in = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (h, w, 3))  # frame bytes without pixels
    frames = (stand_in for _ in range(total))
    pipeline.begin_item(Item("video"))  # as Pipeline.run begins a video
    pipeline.rendering = False
    if config.track.tracking:
        run = _VideoRun(pipeline, fps or 30.0)
        if run.cuts is not None:
            run.cuts = _ReplayCuts(_cuts(config, parts))  # type: ignore[assignment]
        results = run.run(frames)
    else:
        results = pipeline._run_independent(frames)
    collector = PlanCollector()
    n = -1
    for n, res in enumerate(results):
        collector.add(n, res.faces)
    if n + 1 != total:
        raise ProcessingError(f"replay gave {n + 1} frames for {total}")
    return collector.finished()
