"""``veil analyze`` and ``veil render``: the two halves of ``veil anonymize``, joined by a
redaction plan a person can review and edit in between (see :mod:`veil.plan`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options as opt
from .common import _value, build, given_settings, one_line_errors, warn_not_hiding, with_flag_errors
from .engine_options import AddressOpt, EngineOpt
from .progress import console

__all__ = ["analyze", "render"]


@one_line_errors
def analyze(
    input: Path = typer.Argument(..., help="An image or a video."),
    output: Path = typer.Option(..., "-o", "--output", help="The plan to write (JSON)."),
    preset: opt.Preset = "balanced",
    threshold: opt.Threshold = None,
    max_side: opt.MaxSide = None,
    device: opt.Device = None,
    detector: opt.Detector = None,
    filter: opt.Filter = None,
    start: opt.Start = None,
    end: opt.End = None,
    spare: opt.Spare = None,
    gallery: opt.Gallery = None,
    keep_nearest: opt.KeepNearest = None,
    overwrite: opt.Overwrite = False,
    quiet: opt.Quiet = False,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Detect, track and decide; write the redaction plan without rendering."""
    from ..errors import OutputError
    from ..plan import save_plan

    if output.exists() and not overwrite:
        raise OutputError(f"{output}: output exists (use --overwrite)")
    anon = build(preset, threshold=threshold, max_side=max_side, device=device, detector=detector, filter=filter,
                 start=start, end=end, spare=spare or None, gallery=gallery, keep_nearest=keep_nearest,
                 engine=engine, address=address)
    with anon:
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
    filter: opt.Filter = None,
    color: opt.Color = None,
    image: opt.Image = None,
    shape: opt.Shape = None,
    mask_scale: opt.MaskScale = None,
    head: opt.Head = None,
    feather: opt.Feather = None,
    strength: opt.Strength = None,
    allow_weak: opt.AllowWeak = None,
    codec: opt.Codec = None,
    crf: opt.Crf = None,
    encoder_preset: opt.EncoderPreset = None,
    copy_audio: opt.CopyAudio = None,
    keep_metadata: opt.KeepMetadata = None,
    overwrite: opt.Overwrite = False,
    quiet: opt.Quiet = False,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Render exactly what a plan says: its anonymize tracks hidden, its keep tracks left alone.
    A manual track with one keyframe and "follow": true is followed forward and backward first."""
    from ..api import Anonymizer
    from ..plan import load_plan

    p = load_plan(plan)
    given = given_settings(dict(filter=filter, color=color, image=image, shape=shape, mask_scale=mask_scale, head=head,
                                feather=feather, strength=strength, allow_weak=allow_weak, codec=codec, crf=crf,
                                encoder_preset=encoder_preset, copy_audio=copy_audio, keep_metadata=keep_metadata))
    anon = with_flag_errors(lambda: Anonymizer.for_plan(p, engine=_value(engine), address=address, **given), given)
    warn_not_hiding(anon)
    with anon:
        item = anon.render(input, p, output, overwrite)
    if not quiet:
        for tid, (first, last) in item.extra.get("followed", {}).items():
            console.print(f"followed track {tid}: frames {first}..{last}")
        console.print(f"rendered {len(p.tracks)} track(s) of the plan -> {item.output}")
