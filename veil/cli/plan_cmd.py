"""``veil analyze`` and ``veil render``: the two halves of ``veil anonymize``, joined by a
redaction plan a person can review and edit in between (see :mod:`veil.plan`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import AudioChoice, DetectorName, DeviceName, FilterName, PresetName, ShapeName, _value, build, one_line_errors
from .progress import console, err_console

__all__ = ["analyze", "render"]


@one_line_errors
def analyze(
    input: Path = typer.Argument(..., help="An image or a video."),
    output: Path = typer.Option(..., "-o", "--output", help="The plan to write (JSON)."),
    preset: PresetName = typer.Option("balanced", help="Settings preset."),
    threshold: Optional[float] = typer.Option(None, help="Detection score threshold."),
    max_side: Optional[int] = typer.Option(None, help="Detection resolution (long side, px); 0 = native."),
    device: Optional[DeviceName] = typer.Option(None, help="Execution provider."),
    detector: Optional[DetectorName] = typer.Option(None, help="Detector."),
    filter: Optional[FilterName] = typer.Option(None, "--filter", "-f", help="Filter recorded in the plan (render uses it)."),
    start: Optional[float] = typer.Option(None, help="Start time in seconds."),
    end: Optional[float] = typer.Option(None, help="End time in seconds."),
    spare: Optional[list[str]] = typer.Option(None, "--spare", help="Keep this enrolled person visible (repeatable)."),
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="Gallery file (see `veil gallery`)."),
    keep_nearest: Optional[int] = typer.Option(None, help="Keep the N nearest faces visible."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing plan."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Detect, track and decide; write the redaction plan without rendering."""
    from ..errors import OutputError
    from ..plan import save_plan

    if output.exists() and not overwrite:
        raise OutputError(f"{output}: output exists (use --overwrite)")
    anon = build(preset, threshold=threshold, max_side=max_side, device=device, detector=detector, filter=filter,
                 start=start, end=end, spare=spare or None, gallery=gallery, keep_nearest=keep_nearest)
    plan = anon.analyze(input)
    save_plan(plan, output)
    if not quiet:
        n = {d: sum(t.decision == d for t in plan.tracks) for d in ("anonymize", "keep")}
        console.print(f"{plan.input.frames} frame(s), {len(plan.tracks)} track(s) "
                      f"({n['anonymize']} anonymize, {n['keep']} keep) -> {output}")


@one_line_errors
def render(
    input: Path = typer.Argument(..., help="The image or video the plan was made for."),
    plan: Path = typer.Option(..., "--plan", help="The redaction plan (from veil analyze, maybe edited)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (default NAME_anonymized)."),
    filter: Optional[FilterName] = typer.Option(None, "--filter", "-f", help="Override the plan's filter."),
    color: Optional[str] = typer.Option(None, help="Colour for --filter solid/image."),
    image: Optional[Path] = typer.Option(None, help="Replacement image for --filter image."),
    shape: Optional[ShapeName] = typer.Option(None, help="Mask shape."),
    mask_scale: Optional[float] = typer.Option(None, help="Mask size relative to the head box."),
    head: Optional[bool] = typer.Option(None, "--head/--face-only", help="Grow masks over the head."),
    feather: Optional[float] = typer.Option(None, help="Soft edge, fraction of mask size."),
    strength: Optional[float] = typer.Option(None, help="Blur/pixelate strength."),
    codec: Optional[str] = typer.Option(None, help="Video codec."),
    crf: Optional[int] = typer.Option(None, help="Video quality (CRF)."),
    encoder_preset: Optional[str] = typer.Option(None, help="Encoder speed preset."),
    audio: Optional[AudioChoice] = typer.Option(None, "--audio", help="keep (copy) or drop the audio track (default keep)."),
    keep_metadata: Optional[bool] = typer.Option(None, "--keep-metadata/--strip-metadata", help="Keep image EXIF."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Render exactly what a plan says: its anonymize tracks hidden, its keep tracks left alone.
    A manual track with one keyframe and "follow": true is followed forward and backward first."""
    from ..api import Anonymizer
    from ..plan import load_plan

    p = load_plan(plan)
    flags = dict(filter=filter, color=color, image=image, shape=shape, mask_scale=mask_scale, head=head,
                 feather=feather, strength=strength, codec=codec, crf=crf, encoder_preset=encoder_preset,
                 copy_audio=None if audio is None else audio.value == "keep", keep_metadata=keep_metadata)
    anon = Anonymizer.for_plan(p, **{k: _value(v) for k, v in flags.items() if v is not None})
    if not anon.pipeline.anonymizes:
        err_console.print(f"[bold yellow]warning:[/] --filter {anon.config.render.filter} does not anonymize")
    item = anon.render(input, p, output, overwrite)
    if not quiet:
        for tid, (first, last) in item.extra.get("followed", {}).items():
            console.print(f"followed track {tid}: frames {first}..{last}")
        console.print(f"rendered {len(p.tracks)} track(s) of the plan -> {item.output}")
