"""The frame pipeline: detect -> track -> annotate (identity, distance) -> policy -> render.

This is the one place where stages meet. The API and the CLI build a :class:`Pipeline` from
a :class:`~veil.config.Config` and feed it frames; they never call stages themselves. The
annotating stages follow :class:`veil.stages.Stage`: the pipeline tells them when an input
begins and hands each frame's data (:class:`veil.stages.FrameInfo`) from stage to stage and to
the renderer.
Frames are RGB uint8. Every frame that leaves :meth:`Pipeline.run` went through detection:
if anything fails the exception propagates, and the writers discard their partial output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from .config import Config
from .detect import Detector, build_detector, model_info
from .faces import Faces
from .policy import Policy, build_policy
from .render import Filter, anonymizes, build_filter
from .stages import FrameInfo, Item, Stage

if TYPE_CHECKING:
    from .depth.background import BackgroundBlur

__all__ = ["Pipeline", "FrameResult", "Timings", "render_order", "render_plan"]


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
    #: stages that add columns (identity, distance) to final faces, in order (:class:`veil.stages.Stage`);
    #: each sees every frame of a video in order
    annotators: list[Stage] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    rendering: bool = True  # False while analysing only (run(render=False))
    #: the background blur beyond a depth (``--background-beyond``), applied before the filter
    background: BackgroundBlur | None = None
    _camera: dict | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.detector is None:
            self.detector = build_detector(self.config.detect, batch=self.config.video.batch)
        if self.policy is None:
            self.annotators = self.annotators or build_stages(self.config)
            self.policy = build_policy(self.config)
        if self.filter is None:
            self.filter = build_filter(self.config.render)
            if self.config.depth.background_beyond is not None:
                from .depth import build_background

                self.background = build_background(self.config.depth)

    def begin_item(self, item: Item) -> None:
        """A new input starts: stages and rules forget the last one (tracks, hysteresis,
        counters); a still image's camera data goes with its frame (the next one finished)."""
        for stage in self.annotators:
            stage.begin_item(item)
        self.policy.reset()
        self._camera = item.camera

    def stats(self) -> dict[str, dict]:
        """Each stage's counters for the report, since the input began (stages without any left out)."""
        return {stage.name: stats for stage in self.annotators if (stats := stage.stats)}

    @property
    def model_info(self) -> dict[str, Any]:
        """The detector as reports, plans and provenance name it (name, sha256, provider,
        precision, and the sha256 of the model it was derived from, e.g. before int8)."""
        return model_info(self.detector)

    @property
    def anonymizes(self) -> bool:
        return anonymizes(self.filter)

    def detect(self, frames: list[np.ndarray], min_score: float | None = None) -> list[Faces]:
        t = time.perf_counter()
        score = self.config.detect.threshold if min_score is None else min_score
        found = self.detector.detect(frames, score)
        self.timings.detect += time.perf_counter() - t
        return found

    def detect_rois(self, frame: np.ndarray, boxes: np.ndarray, min_score: float) -> Faces:
        """Faces near known positions only (see GridDetector.detect_rois)."""
        t = time.perf_counter()
        found = self.detector.detect_rois(frame, boxes, min_score)
        self.timings.detect += time.perf_counter() - t
        return found

    def process(self, frames: list[np.ndarray], render: bool | None = None) -> list[FrameResult]:
        """Anonymize a batch of independent frames (images; video without tracking);
        ``render=False``: decide only (analysis)."""
        if render is not None:
            self.rendering = render
        return [self.finish(frame, faces) for frame, faces in zip(frames, self.detect(frames))]

    def run(self, frames: Iterable[np.ndarray], fps: float | None = None, render: bool = True,
            item: Item | None = None) -> Iterator[FrameResult]:
        """Anonymize a video's frames, in order, one result per frame.

        With tracking on (the default) frames go through the tracker and the look-ahead
        buffer, so results come out with a delay of up to ``lookahead_s``; ``fps`` converts
        the config's seconds to frames (30 when unknown). ``render=False`` is analysis only
        (``veil analyze``): results carry the decided faces and the frame untouched. ``item``
        says what the frames are (default: a video); it begins a new input (:meth:`begin_item`).
        """
        self.begin_item(item or Item("video"))
        self.rendering = render
        if not self.config.track.tracking:
            yield from self._run_independent(frames)
            return
        yield from _VideoRun(self, fps or 30.0).run(frames)

    def _run_independent(self, frames: Iterable[np.ndarray]) -> Iterator[FrameResult]:
        size = self.config.video.batch
        buf: list[np.ndarray] = []
        for frame in frames:
            buf.append(frame)
            if len(buf) >= size:
                yield from self.process(buf)
                buf = []
        if buf:
            yield from self.process(buf)

    def finish(self, frame: np.ndarray, faces: Faces) -> FrameResult:
        """Annotate, decide and render one frame whose faces are final (after tracking)."""
        t = time.perf_counter()
        info = FrameInfo(camera=self._camera)
        self._camera = None
        for stage in self.annotators:
            faces = stage.annotate(frame, faces, info)
        faces = self.policy.decide(faces)
        t2 = time.perf_counter()
        rendered = frame
        if self.rendering:
            shown = self.background.apply(frame, info.depth_m) if self.background is not None else frame
            rendered = self.filter.apply(shown, render_order(faces))
        self.timings.policy += t2 - t
        self.timings.render += time.perf_counter() - t2
        self.timings.frames += 1
        return FrameResult(rendered, faces)


def render_order(faces: Faces) -> Faces:
    """Faces sorted by box, the order masks are drawn in (overlapping masks depend on it):
    the one-pass render and the render of a plan draw the same faces the same way."""
    if len(faces) < 2:
        return faces
    b = faces.xyxy
    return faces[np.lexsort((faces.scores, b[:, 3], b[:, 2], b[:, 1], b[:, 0]))]


def render_plan(frames: Iterable[np.ndarray], plan, flt: Filter) -> Iterator[np.ndarray]:
    """Render exactly what a :class:`~veil.plan.Plan` says: every box of every ``anonymize``
    track on its frame, nothing of ``keep`` tracks. Raises PlanError (nothing should be
    written) when the media has more or fewer frames than the plan."""
    from .plan import PlanError
    from .plan_faces import faces_of

    boxes = plan.boxes_by_frame("anonymize")
    n = plan.input.frames
    i = -1
    for i, frame in enumerate(frames):
        if i >= n:
            raise PlanError(f"the media has more frames than the plan ({n}): made for another file?")
        h, w = frame.shape[:2]
        if (w, h) != (plan.input.width, plan.input.height):
            raise PlanError(f"the plan is for {plan.input.width}x{plan.input.height} frames, the media has {w}x{h}")
        yield flt.apply(frame, render_order(faces_of(boxes.get(i, []))))
    if i + 1 != n:
        raise PlanError(f"the media has {i + 1} frames, the plan {n}: made for another file?")


def build_stages(config: Config) -> list[Stage]:
    """The annotating stages (distance, identity) the config asks for; their rules are built by
    :func:`veil.policy.build_policy`.

    Extension point: a stage module adds its branch here, reading only its config section.
    """
    stages: list[Stage] = []
    if config.depth.active:
        from .depth import build_distance_stage

        stages.append(build_distance_stage(config.depth, device=config.detect.device))
    if config.identify.active:
        from .identify.stage import build_identify_stage

        stages.append(build_identify_stage(config.identify))
    return stages


class _VideoRun:
    """State of one video through detect -> track -> look-ahead -> policy -> render."""

    def __init__(self, pipeline: Pipeline, fps: float):
        from .track import Lookahead, SceneCutDetector, Tracker

        cfg = pipeline.config.track
        self.pipeline = pipeline
        self.every = cfg.detect_every
        self.low = min(cfg.low_threshold, pipeline.config.detect.threshold)
        self.tracker = Tracker(pipeline.config.detect.threshold, self.low,
                               coast_frames=max(round(cfg.coast_s * fps), self.every), min_match=cfg.min_match)
        self.lookahead = Lookahead(round(cfg.lookahead_s * fps), pre_frames=round(cfg.pre_s * fps),
                                   max_bytes=cfg.max_buffer_mb << 20)
        self.cuts = SceneCutDetector(cfg.scene_cut) if cfg.scene_cut > 0 else None
        self.index = 0
        self.detected_frames = 0
        self.roi_frames = 0
        self.roi = cfg.roi_between
        self.recheck = False

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[FrameResult]:
        from .track import Buffered

        batch_size = self.pipeline.config.video.batch
        batch: list[np.ndarray] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) >= batch_size:
                yield from self._batch(batch, Buffered)
                batch = []
        if batch:
            yield from self._batch(batch, Buffered)
        for item in self.lookahead.flush():
            yield self.pipeline.finish(item.frame, item.faces)

    def _windows_pay(self, frame: np.ndarray) -> bool:
        """Windows around the tracks are on, there are tracks, and fewer than a whole pass costs
        (in a crowd the frames in between are coasted and interpolated instead)."""
        n = len(self.tracker.tracks)
        return self.roi and 0 < n <= self.pipeline.detector.max_windows(*frame.shape[:2])

    def _batch(self, batch: list[np.ndarray], Buffered) -> Iterator[FrameResult]:
        cuts = [self.cuts.update(f) if self.cuts else False for f in batch]
        found: dict[int, Faces] = {}
        if self.every == 1:  # every frame: one batched detector call
            found = dict(zip(range(len(batch)), self.pipeline.detect(batch, self.low)))
        for i, frame in enumerate(batch):
            if cuts[i]:
                self.tracker.reset()
            # detect-every-k: also detect on the frame after a detection that missed a track
            # (a face that blurred or turned), until the tracker has it again
            due = cuts[i] or self.index % self.every == 0 or self.recheck
            windows = None
            if self.every > 1 and not due and self._windows_pay(frame):
                windows = self.tracker.predicted()
            if self.every > 1 and due:
                found[i] = self.pipeline.detect([frame], self.low)[0]
            elif windows is not None:
                found[i] = self.pipeline.detect_rois(frame, windows, self.low)
                self.roi_frames += 1
            faces = self.tracker.update(found.get(i))
            if i in found and (self.every == 1 or due):
                self.detected_frames += 1
                # an established track this detection missed (it is coasting): look again next
                # frame -- with the whole detector, unless windows around the tracks will do it
                self.recheck = self.every > 1 and self.tracker.lost_established() and not self._windows_pay(frame)
            segment = self.cuts.segment if self.cuts else 0
            for item in self.lookahead.push(Buffered(self.index, frame, faces, segment)):
                yield self.pipeline.finish(item.frame, item.faces)
            self.index += 1
