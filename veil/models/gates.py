"""Release gates: metrics taken from ``veil eval`` reports, and requirements such as
``wider.hard>=0.80`` or ``fairness.skin_spread<=3`` checked against them.

Metric names (what ``--require`` can name):

- from ``veil eval widerface`` (``report.json``): ``wider.easy``, ``wider.medium``,
  ``wider.hard`` (AP), ``wider.recall`` (recall of valid faces at the operating threshold),
  ``wider.precision``, ``wider.fp_per_image``, ``fairness.<family>_spread`` (recall spread in
  points over the groups of a slice family, e.g. ``fairness.skin_spread`` for
  ``perceived_skin``);
- from ``veil eval conditions``: ``conditions.<condition>.recall`` and
  ``conditions.<condition>.spread`` (points), and ``fairness.conditions_spread`` (the largest).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, CorruptMediaError

__all__ = ["Requirement", "parse_requirement", "report_metrics", "check"]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_REQ = re.compile(r"^\s*([A-Za-z0-9_.@-]+)\s*(>=|<=|==|>|<)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Requirement:
    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def holds(self, measured: float) -> bool:
        return not math.isnan(measured) and _OPS[self.op](measured, self.value)


def parse_requirement(text: str) -> Requirement:
    m = _REQ.match(text)
    if not m:
        raise ConfigError(f"--require {text!r}: expected METRIC OP NUMBER, e.g. 'wider.hard>=0.80' (OP: >= <= > < ==)")
    return Requirement(m.group(1), m.group(2), float(m.group(3)))


def _short(family: str) -> str:
    return family.removeprefix("perceived_")


def report_metrics(report: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """``(kind, metrics)`` from a ``veil eval widerface`` or ``veil eval conditions`` report."""
    data = report.get("data") if isinstance(report, dict) else None
    if not isinstance(data, dict):
        raise CorruptMediaError("not a veil evaluation report (no 'data')")
    out: dict[str, float] = {}
    if "ap" in data:
        for s in ("easy", "medium", "hard"):
            out[f"wider.{s}"] = float(data["ap"][s]["ap"])
        op = data.get("operating_point", {})
        for key, name in (("recall_valid", "recall"), ("precision", "precision"), ("fp_per_image", "fp_per_image")):
            if op.get(key) is not None:
                out[f"wider.{name}"] = float(op[key])
        for fam, sl in (data.get("slices") or {}).items():
            d = (sl or {}).get("disparity") or {}
            if d.get("spread_points") is not None:
                out[f"fairness.{_short(fam)}_spread"] = float(d["spread_points"])
        return "widerface", out
    if "conditions" in data:
        spreads = []
        for key, c in data["conditions"].items():
            out[f"conditions.{key}.recall"] = float(c["recall"])
            d = c.get("disparity") or {}
            if d.get("spread_points") is not None:
                out[f"conditions.{key}.spread"] = float(d["spread_points"])
                spreads.append(float(d["spread_points"]))
        if spreads:
            out["fairness.conditions_spread"] = max(spreads)
        return "conditions", out
    raise CorruptMediaError("not a 'veil eval widerface' or 'veil eval conditions' report")


def check(requirements: list[Requirement], metrics: dict[str, float]) -> list[str]:
    """The requirements that are missed, each as a readable line (empty: all hold)."""
    missed = []
    for r in requirements:
        if r.metric not in metrics:
            missed.append(f"{r}: no attached evaluation gives {r.metric}")
        elif not r.holds(metrics[r.metric]):
            missed.append(f"{r}: measured {metrics[r.metric]:.4g}")
    return missed
