"""Per-job statistics in ``monitor.sqlite`` in veil's data directory (no pixels, no faces:
histogram counts only), and windows of jobs selected by time or by run id."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ..dirs import data_dir
from ..errors import ConfigError, OutputError
from ..io.sqlitedb import transaction
from .stats import JobStats

__all__ = ["MonitorStore", "parse_window"]


def parse_window(text: str) -> dict[str, Any]:
    """``SINCE..UNTIL`` (ISO dates/times, either side may be empty) or ``runs:ID,ID``."""
    if text.startswith("runs:"):
        ids = [t for t in text[5:].split(",") if t]
        if not ids:
            raise ConfigError(f"window {text!r}: no run ids after 'runs:'")
        return {"runs": ids}
    if ".." not in text:
        raise ConfigError(f"window {text!r}: expected SINCE..UNTIL (ISO dates) or runs:ID,ID")
    since, until = text.split("..", 1)
    for part in (since, until):
        if part:
            try:
                dt.datetime.fromisoformat(part)
            except ValueError:
                raise ConfigError(f"window {text!r}: {part!r} is not an ISO date/time") from None
    return {"since": since or None, "until": until or None}


class MonitorStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else data_dir() / "monitor.sqlite"

    def _db(self):
        return transaction(self.path, ("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, "
                                       "run_id TEXT, input_sha256 TEXT, kind TEXT, stats TEXT NOT NULL)",),
                           OutputError, "monitoring store")

    def add(self, stats: JobStats, run_id: str | None, input_sha256: str | None, kind: str) -> None:
        ts = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        with self._db() as con:
            con.execute("INSERT INTO jobs (ts, run_id, input_sha256, kind, stats) VALUES (?,?,?,?,?)",
                        (ts, run_id, input_sha256, kind, json.dumps(stats.as_dict())))

    def window(self, spec: str) -> tuple[JobStats, int]:
        """The summed statistics of the jobs in a window, and how many jobs there were."""
        w = parse_window(spec)
        with self._db() as con:
            rows = con.execute("SELECT ts, run_id, stats FROM jobs ORDER BY id").fetchall()
        total, n = JobStats(), 0
        for ts, run_id, stats in rows:
            if "runs" in w:
                if run_id not in w["runs"]:
                    continue
            else:
                if w["since"] and ts < _utc(w["since"]) or w["until"] and ts >= _utc(w["until"]):
                    continue
            total += JobStats.from_dict(json.loads(stats))
            n += 1
        return total, n


def _utc(text) -> str:
    v = dt.datetime.fromisoformat(str(text))
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
