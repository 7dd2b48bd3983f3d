"""``veil retention``: how long audit events and outputs are kept, and applying it."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from .common import one_line_errors
from .progress import console

retention_app = typer.Typer(help="Retention of audit events (>= 6 months) and of the outputs veil wrote.",
                            no_args_is_help=True)


@retention_app.command("show")
@one_line_errors
def show() -> None:
    """The retention settings in force."""
    from ..audit.retention import load_retention

    r = load_retention()
    console.print(f"audit events: {r.audit_days} days; outputs: "
                  f"{'kept' if r.outputs_days is None else str(r.outputs_days) + ' days'}", highlight=False)


@retention_app.command("set")
@one_line_errors
def set_(
    audit_days: Optional[int] = typer.Option(None, help="Keep audit events this many days (at least 183)."),
    outputs_days: Optional[int] = typer.Option(None, help="Delete outputs veil wrote after this many days."),
    keep_outputs: bool = typer.Option(False, "--keep-outputs", help="Never delete outputs (the default)."),
) -> None:
    """Change the retention settings (recorded in the audit log)."""
    from dataclasses import asdict, replace

    from ..audit import record_event
    from ..audit.retention import load_retention, save_retention

    r = load_retention()
    changes: dict[str, Any] = {k: v for k, v in {"audit_days": audit_days, "outputs_days": outputs_days}.items()
                                      if v is not None}
    if keep_outputs:
        changes["outputs_days"] = None
    r = replace(r, **changes)
    record_event("retention.settings", asdict(r))
    path = save_retention(r)
    console.print(f"retention saved to {path}: {json.dumps(asdict(r))}", markup=False, highlight=False)


@retention_app.command("apply")
@one_line_errors
def apply(dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted.")) -> None:
    """Delete outputs and prune audit events that are past their retention."""
    from ..audit.retention import apply_retention, load_retention

    done = apply_retention(load_retention(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(done['outputs_deleted'])} output(s); kept {len(done['outputs_kept_changed'])} changed "
                  f"since written; audit: {done['audit_pruned'] or 'nothing to prune'}", markup=False, highlight=False)
