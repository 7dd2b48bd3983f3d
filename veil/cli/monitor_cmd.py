"""``veil monitor``: compare the job statistics of two windows; alerts go to the audit log."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import one_line_errors
from .progress import console


@one_line_errors
def monitor(
    reference: str = typer.Option(..., "--reference", help="Reference window: SINCE..UNTIL (ISO dates) or runs:ID,ID."),
    current: str = typer.Option(..., "--current", help="Current window, same forms."),
    out: Path = typer.Option(Path("drift_report"), "--out", help="Report folder (drift.json, drift.md, drift.html)."),
    psi_threshold: float = typer.Option(0.25, help="PSI at or above this (and a significant KS test) alerts."),
    alpha: float = typer.Option(0.01, help="KS test significance level."),
    min_samples: int = typer.Option(20, help="Fewer values than this in a window: not compared."),
) -> None:
    """Per-statistic drift (PSI, KS test) between two windows of jobs; exit 1 on an alert."""
    from ..audit import record_event
    from ..errors import InputError
    from ..monitor import MonitorStore, compare
    from ..monitor.report import write_drift_report

    store = MonitorStore()
    ref, n_ref = store.window(reference)
    cur, n_cur = store.window(current)
    for name, n in ((reference, n_ref), (current, n_cur)):
        if n == 0:
            raise InputError(f"no monitored jobs in window {name!r}")
    rep = compare(ref, cur, n_ref, n_cur, psi_threshold, alpha, min_samples)
    paths = write_drift_report(rep, out, reference, current)
    if rep.alerts:
        record_event("monitor.alert", {"reference": reference, "current": current, "alerts": rep.alerts,
                                       "psi": {k: rep.statistics[k]["psi"] for k in rep.alerts},
                                       "ks_p": {k: rep.statistics[k]["ks_p"] for k in rep.alerts},
                                       "thresholds": rep.thresholds})
    for k, v in rep.statistics.items():
        mark = "  ALERT" if v["alert"] else ""
        console.print(f"{k}: PSI {v['psi']}  KS p {v['ks_p']}{mark}", markup=False, highlight=False)
    console.print(f"report: {paths['html']}", markup=False, highlight=False)
    if rep.alerts:
        raise typer.Exit(1)
