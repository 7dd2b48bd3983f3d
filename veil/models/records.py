"""The model registry's records: evaluation results attached to a model file (by its sha256)
and release decisions, in ``models.sqlite`` in veil's data directory.

Results and decisions are keyed by the model's sha256, not only its name: a new file under
an old name starts with no evidence and no release. Every attach and decision is also an
audit-log event (the command records it), so this file is a convenient index and the log is
the evidence.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dirs import data_dir
from ..errors import ModelError
from ..io.sqlitedb import transaction

__all__ = ["ModelRecords", "Evaluation", "Decision"]


@dataclass(frozen=True)
class Evaluation:
    model: str
    model_sha256: str
    kind: str
    metrics: dict[str, float]
    report: str
    report_sha256: str
    attached: str
    actor: str


@dataclass(frozen=True)
class Decision:
    model: str
    model_sha256: str
    decision: str  #: "promoted" | "refused"
    requirements: list[str]
    missed: list[str]
    decided: str
    actor: str


_SCHEMA = ("CREATE TABLE IF NOT EXISTS evaluations (id INTEGER PRIMARY KEY, model TEXT, model_sha256 TEXT, kind TEXT, "
           "metrics TEXT, report TEXT, report_sha256 TEXT, attached TEXT, actor TEXT)",
           "CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY, model TEXT, model_sha256 TEXT, decision TEXT, "
           "requirements TEXT, missed TEXT, decided TEXT, actor TEXT)")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class ModelRecords:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else data_dir() / "models.sqlite"

    def _db(self):
        return transaction(self.path, _SCHEMA, ModelError, "model registry")

    def attach(self, ev: Evaluation) -> None:
        with self._db() as con:
            con.execute("INSERT INTO evaluations (model, model_sha256, kind, metrics, report, report_sha256, attached, actor) "
                        "VALUES (?,?,?,?,?,?,?,?)", (ev.model, ev.model_sha256, ev.kind, json.dumps(ev.metrics), ev.report,
                                                      ev.report_sha256, ev.attached, ev.actor))

    def evaluations(self, model: str, model_sha256: str | None = None) -> list[Evaluation]:
        q = "SELECT model, model_sha256, kind, metrics, report, report_sha256, attached, actor FROM evaluations WHERE model = ?"
        args: tuple[Any, ...] = (model,)
        if model_sha256 is not None:
            q, args = q + " AND model_sha256 = ?", (model, model_sha256)
        with self._db() as con:
            rows = con.execute(q + " ORDER BY id", args).fetchall()
        return [Evaluation(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    def metrics(self, model: str, model_sha256: str) -> dict[str, float]:
        """The latest value of each metric over the evaluations attached to this file."""
        out: dict[str, float] = {}
        for ev in self.evaluations(model, model_sha256):
            out.update(ev.metrics)
        return out

    def decide(self, d: Decision) -> None:
        with self._db() as con:
            con.execute("INSERT INTO decisions (model, model_sha256, decision, requirements, missed, decided, actor) "
                        "VALUES (?,?,?,?,?,?,?)", (d.model, d.model_sha256, d.decision, json.dumps(d.requirements),
                                                    json.dumps(d.missed), d.decided, d.actor))

    def decisions(self, model: str) -> list[Decision]:
        with self._db() as con:
            rows = con.execute("SELECT model, model_sha256, decision, requirements, missed, decided, actor FROM decisions "
                               "WHERE model = ? ORDER BY id", (model,)).fetchall()
        return [Decision(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6]) for r in rows]

    def status(self, model: str, model_sha256: str | None) -> str:
        """"promoted" / "refused" (the last decision for this file), else "candidate"."""
        ds = [d for d in self.decisions(model) if d.model_sha256 == model_sha256]
        return ds[-1].decision if ds else "candidate"

    @staticmethod
    def now() -> str:
        return _now()
