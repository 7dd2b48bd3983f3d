"""``veil eval conditions``: recall per group of labelled face crops under capture conditions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import PresetName, build, one_line_errors
from .progress import console

__all__ = ["conditions"]

DEFAULT_CONDITIONS = ["clean", "dark", "small", "motion", "defocus", "jpeg", "occlusion"]


@one_line_errors
def conditions(
    folder: Optional[Path] = typer.Argument(None, help="Crops in the FairFace layout (labels.csv with a 'file' column). "
                                                       "Default: $VEIL_DATA/fairface-dev."),
    condition: Optional[List[str]] = typer.Option(None, "--condition", "-c",
                                                  help="Condition, optionally with a level, e.g. 'dark:0.025' (repeatable; "
                                                       f"default {', '.join(DEFAULT_CONDITIONS)})."),
    group: str = typer.Option("race", help="Label column to compare groups by."),
    preset: PresetName = typer.Option("balanced", help="Settings preset to evaluate."),
    threshold: Optional[float] = typer.Option(None, help="Operating threshold (default: the preset's)."),
    low_light: Optional[bool] = typer.Option(None, "--low-light/--no-low-light", help="Override the preset's low-light pass."),
    out: Path = typer.Option(Path("conditions_report"), "--out", help="Report folder."),
    limit: Optional[int] = typer.Option(None, help="Only every k-th crop so that about N remain (quick check)."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the intervals."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Evaluate although some crops are missing."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Render each crop dark, small, blurred, compressed, occluded; report recall per group."""
    from rich.progress import Progress

    from ..eval.conditions import parse_condition, read_crops
    from ..eval.conditions_report import conditions_document, run_conditions
    from ..eval.data import default_data
    from ..report.document import write_document

    folder = folder or default_data("fairface-dev")
    specs = [parse_condition(c) for c in (condition or DEFAULT_CONDITIONS)]
    crops, missing = read_crops(folder, [group], allow_partial)
    if limit and limit < len(crops):
        crops = crops[:: max(1, len(crops) // limit)]
    anon = build(preset, threshold=threshold, low_light=low_light)
    thr = anon.config.detect.threshold
    with Progress(console=console, disable=quiet, transient=True) as progress:
        task = progress.add_task("rendering and detecting", total=len(crops) * len(specs))
        res = run_conditions(lambda rgb: anon.detect(rgb), folder, crops, specs, thr, group, bootstrap,
                             lambda: progress.advance(task))
    res["missing"] = missing
    res["preset"] = getattr(preset, "value", preset)
    res["settings"] = anon.config.detect.model_dump(mode="json")
    note = f"preset {res['preset']}, detection {res['settings']}" + (f"; PARTIAL: {len(missing)} crops missing" if missing else "")
    doc = conditions_document(res, out, note)
    paths = write_document(doc, out, "report")
    for key, c in res["conditions"].items():
        worst = min(c["groups"], key=lambda g: g["recall"])
        d = c["disparity"]  # None with a single group: no spread to report
        spread = f", spread {d['spread_points']:.1f} points" if d else ""
        console.print(f"{key:>14}: recall {100 * c['recall']:5.1f} %, lowest {worst['group']} {100 * worst['recall']:.1f} %"
                      + spread)
    console.print(f"report: {paths['html']} ({paths['md'].name}, {paths['json'].name})")
