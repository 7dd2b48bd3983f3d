"""The drift report: JSON (numbers), Markdown and HTML (a table and one figure per
statistic: the reference and current distributions over the same bins)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..report.document import Document, Figure, Table, fmt, write_document
from .drift import DriftReport

__all__ = ["drift_document", "write_drift_report"]


def _figure(name: str, entry: dict, folder: Path) -> Figure | None:
    try:
        from ..report.plots import _save, pyplot
    except ImportError:
        return None
    try:
        plt = pyplot()
    except ConfigError:  # matplotlib not installed: the report goes without figures
        return None
    edges = np.asarray(entry["edges"])
    centres = (edges[:-1] + edges[1:]) / 2 if np.isfinite(edges).all() and edges[-1] < 1e8 else np.arange(len(edges) - 1)
    r, c = np.asarray(entry["reference"], float), np.asarray(entry["current"], float)
    fig, ax = plt.subplots(figsize=(5, 2.6))
    width = float(np.min(np.diff(centres))) * 0.4 if len(centres) > 1 else 0.4
    ax.bar(centres - width / 2, r / max(r.sum(), 1), width, label="reference")
    ax.bar(centres + width / 2, c / max(c.sum(), 1), width, label="current")
    ax.set_title(f"{name} (PSI {fmt(entry['psi'])})", fontsize=9)
    ax.set_ylabel("share")
    ax.legend(fontsize=7)
    path = _save(fig, folder / "figures" / f"{name}.png")
    return Figure(str(path.relative_to(folder)), entry["meaning"])


def drift_document(rep: DriftReport, folder: Path, reference: str, current: str) -> Document:
    alerts = rep.alerts
    doc = Document(title="veil monitoring: drift report",
                   summary=(f"ALERT: drift in {', '.join(alerts)}" if alerts else "No drift over the thresholds.")
                   + f" Reference {reference} ({rep.reference_jobs} jobs), current {current} ({rep.current_jobs} jobs).",
                   data={**rep.as_dict(), "reference_window": reference, "current_window": current})
    rows = [[k, v["meaning"], v["n_reference"], v["n_current"], fmt(v["psi"]), fmt(v["ks_d"]),
             "–" if v["ks_p"] is None else f"{v['ks_p']:.3g}", "ALERT" if v["alert"] else ""]
            for k, v in rep.statistics.items()]
    th = rep.thresholds
    doc.add("Statistics", f"Alert when PSI >= {th['psi']:g} and the KS p-value < {th['ks_alpha']:g}, with at least "
            f"{th['min_samples']} values in each window.",
            tables=[Table(["statistic", "measures", "n ref", "n cur", "PSI", "KS D", "KS p", ""], rows)])
    figs = [f for f in (_figure(k, v, folder) for k, v in rep.statistics.items() if v["psi"] is not None) if f]
    if figs:
        doc.add("Distributions", figures=figs)
    return doc


def write_drift_report(rep: DriftReport, folder: Path, reference: str, current: str) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_document(drift_document(rep, folder, reference, current), folder, "drift")
