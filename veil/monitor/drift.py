"""Drift between two windows of jobs, per statistic: the population stability index (PSI)
over the fixed bins, and a two-sample Kolmogorov-Smirnov test on the binned distributions.

A statistic alerts when both say so: PSI at or above ``psi_threshold`` (0.25 is the usual
"major shift") *and* the KS p-value below ``alpha``, with at least ``min_samples`` values in
each window. Requiring both keeps a tiny window (where PSI swings) from alerting, and a huge
one (where KS rejects any difference) from alerting on a shift too small to matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .stats import STATISTICS, JobStats

__all__ = ["psi", "ks_binned", "compare", "DriftReport"]

_EPS = 1e-4


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """sum((c - r) * ln(c / r)) over bins of the two distributions (empty bins smoothed)."""
    r = np.asarray(ref, np.float64)
    c = np.asarray(cur, np.float64)
    r = np.maximum(r / r.sum(), _EPS)
    c = np.maximum(c / c.sum(), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def _kolmogorov_p(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution (asymptotic two-sample p-value)."""
    if lam < 1e-3:
        return 1.0
    p = 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101))
    return float(min(1.0, max(0.0, p)))


def ks_binned(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(D, p): the largest gap between the two cumulative distributions at the bin edges, and
    its asymptotic p-value (with Stephens' small-sample correction). Binning makes D a lower
    bound of the exact statistic, so the test is, if anything, conservative."""
    n1, n2 = float(np.sum(ref)), float(np.sum(cur))
    d = float(np.max(np.abs(np.cumsum(ref) / n1 - np.cumsum(cur) / n2)))
    ne = n1 * n2 / (n1 + n2)
    return d, _kolmogorov_p((math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d)


@dataclass
class DriftReport:
    reference_jobs: int
    current_jobs: int
    thresholds: dict[str, float]
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def alerts(self) -> list[str]:
        return [k for k, v in self.statistics.items() if v["alert"]]

    def as_dict(self) -> dict[str, Any]:
        return {"reference_jobs": self.reference_jobs, "current_jobs": self.current_jobs, "thresholds": self.thresholds,
                "alerts": self.alerts, "statistics": self.statistics}


def compare(ref: JobStats, cur: JobStats, n_ref: int = 0, n_cur: int = 0, psi_threshold: float = 0.25,
            alpha: float = 0.01, min_samples: int = 20) -> DriftReport:
    rep = DriftReport(n_ref, n_cur, {"psi": psi_threshold, "ks_alpha": alpha, "min_samples": min_samples})
    for name, (edges, meaning) in STATISTICS.items():
        r, c = np.asarray(ref.counts[name]), np.asarray(cur.counts[name])
        entry: dict[str, Any] = {"meaning": meaning, "n_reference": int(r.sum()), "n_current": int(c.sum()),
                                 "edges": [round(float(e), 4) for e in edges], "reference": r.tolist(), "current": c.tolist()}
        if r.sum() < min_samples or c.sum() < min_samples:
            entry.update(psi=None, ks_d=None, ks_p=None, alert=False, note="too few values to compare")
        else:
            d, p = ks_binned(r, c)
            v = psi(r, c)
            entry.update(psi=round(v, 4), ks_d=round(d, 4), ks_p=float(f"{p:.3g}"), alert=bool(v >= psi_threshold and p < alpha))
        rep.statistics[name] = entry
    return rep
