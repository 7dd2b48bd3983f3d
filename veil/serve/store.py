"""The job store: one SQLite file in veil's data directory (no server to install).

Tables: ``jobs`` (one per media file: status, progress, paths, review state),
``plans`` (every version of a job's plan: each reviewer edit is a new version, so undo and
redo move a pointer and nothing is ever lost) and ``history`` (who did what, when, with the
track before and after). The web server and the worker processes each open their own
connections; WAL mode lets them read while another writes.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

__all__ = ["JobStore", "TERMINAL", "ACTIVE"]

#: job statuses: queued -> analyzing -> review -> exporting -> exported; failed; interrupted
ACTIVE = ("queued", "analyzing", "exporting")
TERMINAL = ("review", "exported", "failed", "interrupted")
_MAX_VERSIONS = 500  # plan versions kept per job (older ones are pruned, the history stays)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, media TEXT NOT NULL,
    status TEXT NOT NULL, stage TEXT, done INTEGER DEFAULT 0, total INTEGER DEFAULT 0,
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL, settings TEXT NOT NULL,
    plan_version INTEGER DEFAULT 0, plan_top INTEGER DEFAULT 0, output TEXT,
    reviewed_to_end INTEGER DEFAULT 0, reviewed_by TEXT, reviewed_at REAL, owned_media INTEGER DEFAULT 1
);
CREATE TABLE IF NOT EXISTS plans (
    job_id TEXT NOT NULL, version INTEGER NOT NULL, plan TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (job_id, version)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, at REAL NOT NULL, who TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT, before TEXT, after TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_JOB_FIELDS = ("id", "name", "kind", "media", "status", "stage", "done", "total", "error", "created", "updated",
               "settings", "plan_version", "plan_top", "output", "reviewed_to_end", "reviewed_by", "reviewed_at",
               "owned_media")


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        finally:
            db.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    # -- jobs ------------------------------------------------------------------------------
    def create(self, name: str, kind: str, media: Path, settings: dict, owned_media: bool = True) -> str:
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO jobs (id, name, kind, media, status, created, updated, settings, owned_media) "
                       "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                       (job_id, name, kind, str(media), now, now, json.dumps(settings), int(owned_media)))
        return job_id

    def get(self, job_id: str) -> Optional[dict]:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self) -> list[dict]:
        with self._db() as db:
            return [_job(r) for r in db.execute("SELECT * FROM jobs ORDER BY created DESC").fetchall()]

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(_JOB_FIELDS)
        if bad:
            raise KeyError(f"unknown job fields {bad}")
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    def claim(self, job_id: str, frm: tuple[str, ...], to: str) -> bool:
        """Move a job from one of ``frm`` to ``to`` atomically; False if it was elsewhere."""
        with self._db() as db:
            cur = db.execute(f"UPDATE jobs SET status = ?, updated = ?, error = NULL WHERE id = ? AND status IN "
                             f"({', '.join('?' * len(frm))})", (to, time.time(), job_id, *frm))
            return cur.rowcount == 1

    def interrupt_active(self) -> int:
        """At start-up: jobs a previous server left running can never finish."""
        with self._db() as db:
            cur = db.execute(f"UPDATE jobs SET status = 'interrupted', error = 'the server stopped while this job "
                             f"ran; start it again', updated = ? WHERE status IN ({', '.join('?' * len(ACTIVE))})",
                             (time.time(), *ACTIVE))
            return cur.rowcount

    def delete(self, job_id: str) -> None:
        with self._db() as db:
            for table, col in (("jobs", "id"), ("plans", "job_id"), ("history", "job_id")):
                db.execute(f"DELETE FROM {table} WHERE {col} = ?", (job_id,))

    # -- plan versions ---------------------------------------------------------------------
    def plan(self, job_id: str) -> Optional[str]:
        """The current plan (JSON text), or None before analysis finished."""
        with self._db() as db:
            row = db.execute("SELECT p.plan FROM plans p JOIN jobs j ON p.job_id = j.id AND p.version = j.plan_version "
                             "WHERE j.id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def push_plan(self, job_id: str, plan_json: str, base: Optional[int] = None) -> int:
        """Store a new version after the current one (dropping any redo versions); returns it.
        ``base``: the version the edit was made on; a stale one raises ValueError (lost update)."""
        with self._db() as db:
            cur, _ = db.execute("SELECT plan_version, plan_top FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if base is not None and base != cur:
                raise ValueError(f"the plan changed meanwhile (version {cur}, edit made on {base}); reload")
            new = cur + 1
            db.execute("DELETE FROM plans WHERE job_id = ? AND version >= ?", (job_id, new))
            db.execute("DELETE FROM plans WHERE job_id = ? AND version <= ?", (job_id, new - _MAX_VERSIONS))
            db.execute("INSERT INTO plans VALUES (?, ?, ?, ?)", (job_id, new, plan_json, time.time()))
            db.execute("UPDATE jobs SET plan_version = ?, plan_top = ?, updated = ? WHERE id = ?",
                       (new, new, time.time(), job_id))
        return new

    def move_plan(self, job_id: str, step: int) -> Optional[int]:
        """Undo (-1) or redo (+1); None when there is nothing to move to."""
        with self._db() as db:
            cur, top = db.execute("SELECT plan_version, plan_top FROM jobs WHERE id = ?", (job_id,)).fetchone()
            new = cur + step
            if new > top or not db.execute("SELECT 1 FROM plans WHERE job_id = ? AND version = ?",
                                           (job_id, new)).fetchone() or new < 1:  # version 1 = the analysis
                return None
            db.execute("UPDATE jobs SET plan_version = ?, updated = ? WHERE id = ?", (new, time.time(), job_id))
        return new

    # -- history ---------------------------------------------------------------------------
    def record(self, job_id: str, who: str, action: str, detail: Any = None, before: Any = None,
               after: Any = None) -> None:
        _audit(job_id, who, action, detail)
        with self._db() as db:
            db.execute("INSERT INTO history (job_id, at, who, action, detail, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (job_id, time.time(), who, action, *(None if v is None else json.dumps(v)
                                                           for v in (detail, before, after))))

    def history(self, job_id: str) -> builtins.list[dict]:  # `list` here is the method above
        with self._db() as db:
            rows = db.execute("SELECT * FROM history WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        out = []
        for r in rows:
            out.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["at"])), "who": r["who"],
                        "action": r["action"], **{k: json.loads(r[k]) if r[k] else None
                                                  for k in ("detail", "before", "after")}})
        return out

    # -- settings --------------------------------------------------------------------------
    def meta(self, key: str) -> Optional[str]:
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _job(row: sqlite3.Row) -> dict:
    job = dict(row)
    job["settings"] = json.loads(job["settings"])
    job["reviewed_to_end"] = bool(job["reviewed_to_end"])
    return job


def _audit(job_id: str, who: str, action: str, detail: Any) -> None:
    """Every review action is also an audit-log event (veil.audit): who, what, which job and
    plan version. Reasons, boxes and before/after stay in this store: free text may name people."""
    from ..audit import record_event

    facts = {k: v for k, v in (detail or {}).items() if isinstance(v, (int, float, bool))} if isinstance(detail, dict) else {}
    record_event("review." + "_".join(action.split()), {"job_id": job_id, "who": who, "action": action, **facts})
