"""``veil eval model-card``: write the model card from evaluation reports."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import one_line_errors
from .progress import console

__all__ = ["model_card"]


@one_line_errors
def model_card(
    wider: Optional[List[Path]] = typer.Option(None, "--wider", help="report.json of `veil eval widerface` (repeatable, one per preset; the first gives the slices)."),
    conditions: Optional[List[Path]] = typer.Option(None, "--conditions", help="report.json of `veil eval conditions` (repeatable)."),
    privacy: Optional[Path] = typer.Option(None, "--privacy", help="privacy.json of `veil eval privacy`."),
    out: Path = typer.Option(Path("docs/model-card.md"), "--out", help="Where to write the card."),
    detector: str = typer.Option("centerface", help="Detector the reports are about."),
) -> None:
    """Generate the model card (Markdown) from the JSON reports of the other eval commands."""
    from ..models import MODELS, resolve_model
    from ..report.model_card import load_report, model_card as card, write_model_card

    if not (wider or conditions or privacy):
        raise typer.BadParameter("give at least one report (--wider, --conditions or --privacy)")
    w = [load_report(p, "widerface") for p in wider or []]
    c = [load_report(p, "conditions") for p in conditions or []]
    pv = load_report(privacy, "privacy") if privacy else None
    path, digest = resolve_model(detector)
    spec = MODELS[detector]
    model = {"name": detector, "file": Path(path).name, "sha256": digest, "licence": spec.license,
             "source": spec.source}
    dst = write_model_card(card(w, c, pv, model), out)
    console.print(f"model card: {dst}")
