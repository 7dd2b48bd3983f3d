"""``veil eval ...``: evaluation commands (leaks in video; more to come)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import PresetName, ShapeName, build, one_line_errors
from .progress import console

eval_app = typer.Typer(help="Evaluate detection and anonymization against ground truth.", no_args_is_help=True)


@eval_app.command("video")
@one_line_errors
def video(
    clip: Path = typer.Argument(..., help="A video file."),
    boxes: Path = typer.Option(..., "--boxes", help="True face box per frame, OTB style 'x,y,w,h' lines."),
    preset: PresetName = typer.Option("balanced", help="Settings preset."),
    track: Optional[bool] = typer.Option(None, "--track/--no-track", help="Tracking and gap filling (default on)."),
    detect_every: Optional[int] = typer.Option(None, help="Run the detector every k-th frame."),
    threshold: Optional[float] = typer.Option(None),
    max_side: Optional[int] = typer.Option(None),
    mask_scale: Optional[float] = typer.Option(None, help="Mask size relative to the face box."),
    shape: Optional[ShapeName] = typer.Option(None, help="Mask shape."),
    min_cover: float = typer.Option(0.8, help="A face-frame leaks when less than this fraction of its box is masked."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result as JSON."),
) -> None:
    """Face-frame leak rate and longest leaked run of a clip with known face boxes."""
    from ..eval.leaks import leak_report, read_boxes
    from ..io.video import probe_video, read_frames

    truth = read_boxes(boxes)
    info = probe_video(clip)
    anon = build(preset, tracking=track, detect_every=detect_every, threshold=threshold, max_side=max_side,
                 mask_scale=mask_scale, shape=shape)
    fps = float(info.fps) if info.fps else None
    faces = [r.faces for r in anon.pipeline.run(read_frames(clip), fps)]
    rc = anon.config.render
    rep = leak_report(faces, truth, (info.height, info.width), rc.shape, rc.mask_scale, min_cover, rc.head)
    d = {"clip": str(clip), "settings": anon.config.model_dump(mode="json"), **rep.as_dict()}
    console.print(f"{clip.name}: {rep.face_frames} face-frames, {len(rep.leaked)} leaked "
                  f"({100 * rep.leak_rate:.2f} %), longest leaked run {rep.longest_run} frame(s)")
    if json_out:
        json_out.write_text(json.dumps(d, indent=1))
