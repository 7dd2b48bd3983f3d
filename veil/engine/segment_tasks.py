"""The work one segment needs, as top-level functions an executor can ship to a worker.

* :func:`detect_segment` decodes the segment's frames (seeking to its keyframe), runs the
  detector on every frame and the scene-cut histograms, and returns the raw detections.
  Detector batches are aligned to the file's frame numbers (``batch`` frames from frame 0,
  as the local path groups them), so every frame meets the detector in the same company
  and the detections are the local path's, bit for bit.
* :func:`render_segment` decodes the segment again, draws the stitched plan's boxes and
  encodes it (video only) with the local path's writer, :func:`veil.io.video.transcode_video`.

Both check that the segment decoded exactly the frames (count and timestamps) the packet
scan promised; anything else fails the segment (:mod:`veil.engine.keyframes`).
Each worker process keeps one :class:`~veil.pipeline.Pipeline` per config: the detector
is loaded once per worker, not once per segment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import Config
from ..errors import ProcessingError
from ..faces import Faces

__all__ = ["DetectTask", "Detections", "RenderTask", "detect_segment", "render_segment", "pipeline_for"]

_PIPELINES: dict[str, Any] = {}


def pipeline_for(config: Config):
    """This process's :class:`~veil.pipeline.Pipeline` for ``config``, built once (the detector
    is the costly part); it runs the stages, and its ``model_info`` goes into the plan."""
    from ..pipeline import Pipeline

    key = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    if key not in _PIPELINES:
        _PIPELINES.clear()  # one config at a time per worker: models are big
        _PIPELINES[key] = Pipeline(config)
    return _PIPELINES[key]


@dataclass(frozen=True)
class DetectTask:
    src: str
    config: Config
    number: int
    first: int  # global index of the segment's first frame
    frames: int
    start: float  # VideoConfig.start / end selecting exactly these frames
    end: Optional[float]
    times: tuple[float, ...]  # the frames' times relative to the first one (seconds), from the scan


@dataclass
class Detections:
    """What :func:`detect_segment` found; small (boxes, no pixels)."""

    number: int
    faces: list[Faces]  # per frame, down to the tracker's low threshold (or the threshold untracked)
    cuts: list[bool]  # per frame: a scene cut before it, within the segment (the first is False)
    first_features: Any = None  # scene-cut histograms of the first and last frames
    last_features: Any = None
    shape: tuple[int, int] = (0, 0)  # height, width
    frame_bytes: int = 0
    model: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RenderTask:
    src: str
    dst: str  # the segment's file (its suffix picks the container, as for the whole output)
    config: Config
    number: int
    first: int
    frames: int
    start: float
    end: Optional[float]
    boxes: dict  # global frame index -> list of plan FrameBox to anonymize


def _segment_video(task) -> Any:
    return task.config.video.model_copy(update={"start": task.start, "end": task.end, "copy_audio": False})


def _check_times(task, got: list[float]) -> None:
    if len(got) != task.frames:
        raise ProcessingError(f"segment {task.number}: decoded {len(got)} frames where the file has "
                              f"{task.frames}; nothing written")
    bad = next((i for i, (a, b) in enumerate(zip(got, task.times)) if abs(a - b) > 2e-6), None)
    if bad is not None:
        raise ProcessingError(f"segment {task.number}: frame {task.first + bad} decoded at {got[bad]:.6f} s "
                              f"into the segment, the file says {task.times[bad]:.6f} s; nothing written")


def low_threshold(config: Config) -> float:
    """The score down to which the local path detects (tracking continues weak faces)."""
    if not config.track.tracking:
        return config.detect.threshold
    return min(config.track.low_threshold, config.detect.threshold)


def detect_segment(task: DetectTask) -> Detections:
    from ..io.video import decode_video
    from ..track import SceneCutDetector

    pipeline = pipeline_for(task.config)
    batch_size = task.config.video.batch
    low = low_threshold(task.config)
    cut_threshold = task.config.track.scene_cut
    cuts_det = SceneCutDetector(cut_threshold) if cut_threshold > 0 else None
    out = Detections(number=task.number, faces=[], cuts=[], model=pipeline.model_info)
    times: list[float] = []
    batch: list[np.ndarray] = []
    first_features = None

    def flush() -> None:
        if batch:
            out.faces.extend(pipeline.detect(batch, low))
            batch.clear()

    for arr, t in decode_video(Path(task.src), _segment_video(task)):
        if not times:
            out.shape, out.frame_bytes = arr.shape[:2], arr.nbytes
        times.append(t)
        if cuts_det is not None:
            out.cuts.append(cuts_det.update(arr))
            if first_features is None:
                first_features = cuts_det.features
        else:
            out.cuts.append(False)
        batch.append(arr)
        if (task.first + len(times)) % batch_size == 0:  # the local path's batch ends here
            flush()
    flush()
    _check_times(task, times)
    out.first_features = first_features
    out.last_features = cuts_det.features if cuts_det is not None else None
    return out


def render_segment(task: RenderTask) -> int:
    """Encode the segment to ``task.dst``; returns its frame count."""
    from ..io.video import transcode_video
    from ..pipeline import render_order
    from ..plan_faces import faces_of

    flt = pipeline_for(task.config).filter

    def process(frames):
        for j, frame in enumerate(frames):
            yield flt.apply(frame, render_order(faces_of(task.boxes.get(task.first + j, []))))

    stats = transcode_video(Path(task.src), Path(task.dst), process, _segment_video(task), replace=True)
    if stats.frames_out != task.frames:
        raise ProcessingError(f"segment {task.number}: wrote {stats.frames_out} frames where the file has "
                              f"{task.frames}; nothing written")
    return stats.frames_out
