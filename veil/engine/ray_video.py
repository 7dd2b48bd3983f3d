"""One video on Ray: :func:`veil.engine.segments.run_segmented` with a
:class:`~veil.engine.ray_executor.RayExecutor`, recorded as an item of the run's report like
the local path records it (counts and, with ``--report``, every frame's faces from the plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..report import ItemReport

__all__ = ["anonymize_video", "render_video"]




def _progress(on_frame: Callable[[int], None] | None, frames: int | None):
    """``on_done`` for the executor: the bar moves as segments finish (detection is the first
    half of the frames, rendering the second)."""
    if on_frame is None or not frames:
        return None
    phase = {"n": -1}

    def on_done(done: int, total: int) -> None:
        if done == 1 or total == 1:
            phase["n"] += 1 if done == 1 else 0
        on_frame(min(frames, int(frames * (min(phase["n"], 1) + done / total) / 2)))

    return on_done


def anonymize_video(anon, src: Path, dst: Path, overwrite: bool,
                    on_frame: Callable[[int], None] | None = None, plan=None) -> ItemReport:
    """``anon.video`` (or, with ``plan``, ``anon.render``) on the Ray engine."""
    from ..io.video import probe_video
    from .segments import run_segmented

    item = ItemReport(input=str(src), kind="video", output=str(dst))
    with anon._item(item, src, dst, overwrite):
        info = probe_video(src)
        executor = anon.engine.executor(on_done=_progress(on_frame, info.frames))
        result = run_segmented(src, dst, anon.config, executor, overwrite=overwrite, plan=plan,
                               segment_s=anon.engine.segment_s)
        _add_frames(item, result.plan)
        item.extra["video"] = {"width": result.plan.input.width, "height": result.plan.input.height,
                               "fps": result.plan.input.fps, "frames": result.frames,
                               "audio_copied": _has_audio(dst), "rotation": info.rotation,
                               "mirrored": info.mirrored}
        item.extra["engine"] = {"name": "ray", "segments": len(result.segments),
                                "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
        if plan is not None:
            for track in plan.tracks:
                item.extra.setdefault("plan_tracks", {}).setdefault(track.decision, 0)
                item.extra["plan_tracks"][track.decision] += 1
    return item


def render_video(anon, src: Path, plan, dst: Path, overwrite: bool,
                 on_frame: Callable[[int], None] | None = None) -> ItemReport:
    return anonymize_video(anon, src, dst, overwrite, on_frame, plan=plan)


def _add_frames(item: ItemReport, plan) -> None:
    """Every frame's faces, from the plan the segments were rendered from."""
    from ..faces import KEEP, Faces
    from ..plan_faces import faces_of

    hide, keep = plan.boxes_by_frame("anonymize"), plan.boxes_by_frame("keep")
    times = plan.input.timestamps
    for i in range(plan.input.frames):
        kept = faces_of(keep.get(i, []))
        if len(kept):
            kept = kept.with_columns(decision=np.full(len(kept), KEEP, object))
        item.add_frame(i, Faces.concatenate([faces_of(hide.get(i, [])), kept]), times[i] if i < len(times) else None)


def _has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as c:
        return bool(c.streams.audio)
