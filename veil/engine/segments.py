"""Long videos in parallel: split at keyframes, detect and render segments on any executor.

:func:`run_segmented` writes the file the local path (``veil anonymize``, or ``veil analyze``
then ``veil render``) writes, with the same frames, times and decisions:

1. :func:`~veil.engine.keyframes.scan` reads the video packets (no decoding) and
   :func:`~veil.engine.keyframes.plan_segments` cuts at closed-GOP keyframes about
   ``segment_s`` apart;
2. each segment is decoded from its keyframe and detected in parallel
   (:func:`~veil.engine.segment_tasks.detect_segment`);
3. the detections go through the tracker, look-ahead and policy once, in file order
   (:mod:`veil.engine.stitch`): one plan for the whole file, equal to the local analysis, so
   tracks and gap filling run across the seams as if there were none;
4. each segment is rendered from that plan and encoded in parallel
   (:func:`~veil.engine.segment_tasks.render_segment`);
5. the segments are joined by stream copy with the source's audio
   (:mod:`veil.engine.join`) into ``dst``, atomically (:mod:`veil.io.atomic`).

Failures: a segment task that raises is run once more (on whichever worker the executor
picks); a second failure fails the file with :class:`SegmentError` naming the segment and the
error. Errors of the input or the settings are not retried (they would fail again). On any
failure, and on Ctrl-C (``KeyboardInterrupt``), the segment files are removed and nothing is
left at ``dst``. Segment files live in a hidden folder beside ``dst``
(``.NAME.veil-segments-*``): on one machine, or a file system every worker shares.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..config import Config
from ..errors import ConfigError, InputError, OutputError, ProcessingError, VeilError
from .keyframes import Layout, Segment, plan_segments, scan
from .segment_tasks import DetectTask, RenderTask, detect_segment, render_segment
from .stitch import check_config, replay_plan

if TYPE_CHECKING:
    from ..plan import Plan

__all__ = ["run_segmented", "analyze_segmented", "SegmentError", "SegmentedResult", "LocalExecutor", "ProcessExecutor"]

from .executors import LocalExecutor, ProcessExecutor  # noqa: E402  (re-exported)

log = logging.getLogger("veil")


class SegmentError(ProcessingError):
    """A segment failed twice; the file fails with it."""


@dataclass
class SegmentedResult:
    plan: Plan  # of the whole file
    segments: list[Segment]
    frames: int
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase


@dataclass(frozen=True)
class _Outcome:
    value: object = None
    error: Optional[str] = None
    fatal: bool = False  # the input or settings: retrying cannot help


def _attempt(job: tuple[Callable, object]) -> _Outcome:
    """Run one task; an ordinary exception comes back as an outcome (the driver retries it).
    KeyboardInterrupt and other BaseExceptions propagate and stop the job."""
    fn, task = job
    try:
        return _Outcome(value=fn(task))
    except (InputError, ConfigError) as exc:
        return _Outcome(error=str(exc), fatal=True)
    except VeilError as exc:  # veil's errors are one-line messages already
        return _Outcome(error=str(exc))
    except Exception as exc:  # noqa: BLE001 -- reported with the segment, retried once
        return _Outcome(error=f"{type(exc).__name__}: {exc}")


def _map_with_retry(executor, fn: Callable, tasks: list, what: str, layout: Layout) -> list:
    outcomes = executor.map(_attempt, [(fn, t) for t in tasks])
    failed = [i for i, o in enumerate(outcomes) if o.error is not None]
    for i in failed:
        if outcomes[i].fatal:
            raise _failure(tasks[i], outcomes[i], what, layout, "failed")
    if failed:
        log.warning("%s: %d segment(s) failed, retrying: %s", what, len(failed),
                    "; ".join(f"{tasks[i].number}: {outcomes[i].error}" for i in failed))
        again = executor.map(_attempt, [(fn, tasks[i]) for i in failed])
        for i, o in zip(failed, again):
            if o.error is not None:
                raise _failure(tasks[i], o, what, layout, "failed twice")
            outcomes[i] = o
    return [o.value for o in outcomes]


def _failure(task, outcome: _Outcome, what: str, layout: Layout, how: str) -> SegmentError:
    a, b = task.first, task.first + task.frames - 1
    return SegmentError(f"{what}: segment {task.number} (frames {a}-{b}, {layout.seconds(a):.2f}-"
                        f"{layout.seconds(b):.2f} s) {how}: {outcome.error}; nothing written")


def run_segmented(src: Path | str, dst: Path | str, config: Config, executor, *, segment_s: float = 30.0,
                  overwrite: bool = False, plan=None) -> SegmentedResult:
    """Anonymize the video ``src`` into ``dst`` in segments run by ``executor``.

    ``segment_s``: the target segment length in seconds (cuts fall on the first keyframe after
    it). ``plan``: render this plan (``veil render``) instead of analysing. Returns the plan
    used and the wall time of each phase. Raises ConfigError for settings that cannot be
    split (identity and distance rules, detect-every-k, start/end), SegmentError when a
    segment fails twice, and whatever the input checks raise; ``dst`` is then untouched.
    """
    from ..io.atomic import atomic_output
    from ..io.paths import check_output_path
    from ..io.video import probe_video
    from .join import check_audio, join_segments

    src, dst = Path(src), Path(dst)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    check_config(config)
    check_output_path(src, dst)
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: output exists (use --overwrite)")
    if dst.suffix.lower() == ".avi":
        raise ConfigError(f"{dst}: segmented runs cannot write .avi (no timestamps to join on); use the local engine")
    info = probe_video(src)  # one-line errors for a missing, damaged or unsupported file
    check_audio(src, dst, config.video)
    layout = scan(src)
    segments = plan_segments(layout, segment_s)
    seconds["scan"] = time.perf_counter() - t0
    fps = float(info.fps) if info.fps else None

    def span(seg: Segment) -> dict:
        return _span(src, config, layout, seg)

    if plan is None:
        plan = _analyze(src, config, executor, layout, segments, fps, seconds)
    else:
        from ..models import sha256_file

        plan.check_matches(sha256_file(src), src.stat().st_size)
        if any(t.follow for t in plan.tracks):
            raise ConfigError("the plan asks to follow a drawn face (follow: true); segmented runs do not follow "
                              "yet: render it with the local engine")
        if plan.input.frames != layout.frames:
            raise ConfigError(f"the plan has {plan.input.frames} frames, {src} has {layout.frames}")
    boxes = plan.boxes_by_frame("anonymize")
    work = Path(tempfile.mkdtemp(prefix=f".{dst.name}.veil-segments-", dir=dst.parent))
    try:
        t = time.perf_counter()
        tasks = []
        for s in segments:
            kw = span(s)
            kw.pop("times")
            part_boxes = {i: boxes[i] for i in range(s.first, s.end) if i in boxes}
            tasks.append(RenderTask(dst=str(work / f"segment-{s.number:05d}{dst.suffix}"), boxes=part_boxes, **kw))
        _map_with_retry(executor, render_segment, tasks, "render", layout)
        seconds["render"] = time.perf_counter() - t
        t = time.perf_counter()
        with atomic_output(dst, replace=overwrite) as tmp:
            join_segments([(Path(tk.dst), tk.first) for tk in tasks], layout, src, tmp, config.video)
        seconds["join"] = time.perf_counter() - t
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds["total"] = time.perf_counter() - t0
    log.info("%s -> %s: %d frames in %d segments, %.1f s", src.name, dst.name, layout.frames, len(segments),
             seconds["total"])
    return SegmentedResult(plan=plan, segments=segments, frames=layout.frames, seconds=seconds)


def analyze_segmented(src: Path | str, config: Config, executor, *, segment_s: float = 30.0) -> SegmentedResult:
    """``veil analyze`` of a video in segments: the plan :meth:`veil.api.Anonymizer.analyze`
    makes (equal field for field but ``created``), with detection spread over ``executor``."""
    from ..io.video import probe_video

    src = Path(src)
    t0 = time.perf_counter()
    check_config(config)
    info = probe_video(src)
    layout = scan(src)
    segments = plan_segments(layout, segment_s)
    seconds = {"scan": time.perf_counter() - t0}
    plan = _analyze(src, config, executor, layout, segments, float(info.fps) if info.fps else None, seconds)
    seconds["total"] = time.perf_counter() - t0
    return SegmentedResult(plan=plan, segments=segments, frames=layout.frames, seconds=seconds)


def _span(src: Path, config: Config, layout: Layout, seg: Segment) -> dict:
    """A segment task's fields: where it starts and ends, and its frames' times."""
    end = layout.position(seg.end) if seg.end < layout.frames else None
    base = layout.pts[seg.first]
    times = tuple(float((p - base) * layout.time_base) for p in layout.pts[seg.first:seg.end])
    return dict(src=str(src), config=config, number=seg.number, first=seg.first, frames=seg.frames,
                start=layout.position(seg.first), end=end, times=times)


def _analyze(src: Path, config: Config, executor, layout: Layout, segments: list[Segment], fps: Optional[float],
             seconds: dict[str, float]):
    """Detect the segments in parallel, then replay tracking over all detections (the plan)."""
    t = time.perf_counter()
    tasks = [DetectTask(**_span(src, config, layout, s)) for s in segments]
    parts = _map_with_retry(executor, detect_segment, tasks, "detect", layout)
    seconds["detect"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = _plan(src, config, layout, parts, fps)
    seconds["stitch"] = time.perf_counter() - t
    return plan


def _plan(src: Path, config: Config, layout: Layout, parts: list, fps: Optional[float]):
    """The whole file's plan, as :meth:`veil.api.Anonymizer.analyze` makes it."""
    from .._version import __version__
    from ..models import sha256_file
    from ..plan import InputInfo, Plan

    tracks = replay_plan(config, parts, fps)
    h, w = parts[0].shape
    inp = InputInfo(name=src.name, kind="video", sha256=sha256_file(src), size=src.stat().st_size, width=w,
                    height=h, frames=layout.frames, fps=fps,
                    timestamps=[round(layout.seconds(i), 6) for i in range(layout.frames)])
    return Plan(veil_version=__version__, input=inp, models={"detector": parts[0].model},
                settings=config.model_dump(mode="json"), tracks=tracks)
