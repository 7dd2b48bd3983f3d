"""``veil compliance report``: the compliance pack for a period (activity, instructions-for-use
facts, DPIA draft, audit export), from the audit log and the model registry."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import one_line_errors
from .progress import console

compliance_app = typer.Typer(help="Compliance pack: activity report, instructions-for-use facts, DPIA draft.",
                             no_args_is_help=True)


@compliance_app.command("report")
@one_line_errors
def report(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the pack."),
    since: Optional[str] = typer.Option(None, help="Period start (ISO date/time; default: the log's start)."),
    until: Optional[str] = typer.Option(None, help="Period end (exclusive; default: now)."),
) -> None:
    """Write activity.{json,md}, instructions_for_use.md, dpia_draft.md and audit_export.json."""
    from ..audit.compliance import compliance_pack

    import json

    files = compliance_pack(out, since, until)
    for f in files.values():
        console.print(f"-> {f}", markup=False, highlight=False)
    check = json.loads(files["activity_json"].read_text(encoding="utf-8"))["audit_verification"]
    if not check["ok"]:
        console.print("veil: the audit log FAILED verification (the pack says so): " + "; ".join(check["problems"]),
                      markup=False, highlight=False)
        raise typer.Exit(1)
