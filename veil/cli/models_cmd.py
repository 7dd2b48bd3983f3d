"""``veil models``: list known depth models, fetch one (sha256-verified) into the data dir."""

from __future__ import annotations

from typing import Optional

import typer

from .common import one_line_errors
from .progress import console

models_app = typer.Typer(help="Optional model files (monocular depth): list, fetch with sha256 check.",
                         no_args_is_help=True)


@models_app.command("list")
@one_line_errors
def list_models() -> None:
    """Known depth models, where they go, and whether they are installed."""
    from ..depth.models import DEPTH_MODELS, installed_path, models_dir

    console.print(f"models folder: {models_dir()}")
    for name, spec in DEPTH_MODELS.items():
        path = installed_path(name)
        pinned = spec.sha256[:12] + "…" if spec.sha256 else "not pinned (fetch needs --sha256)"
        state = f"installed: {path}" if path else "not installed"
        console.print(f"{name}: {spec.note}; {spec.license}; sha256 {pinned}; {state}", highlight=False)


@models_app.command("fetch")
@one_line_errors
def fetch(
    name: str = typer.Argument(..., help="Known model name (see `veil models list`) or a name for --url."),
    url: Optional[str] = typer.Option(None, help="Download from this URL instead of the known one."),
    sha256: Optional[str] = typer.Option(None, help="Expected sha256 (required when the model has no pinned one)."),
) -> None:
    """Download a model, verify its sha256, and install it atomically (nothing on failure)."""
    from ..depth.models import fetch_model

    path = fetch_model(name, url=url, sha256=sha256)
    console.print(f"{name}: verified and installed -> {path}", highlight=False)
    console.print(f"use it with: veil anonymize INPUT --depth-model {path}", highlight=False)
