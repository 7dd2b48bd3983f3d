"""Retention: how long the audit log and the outputs it records are kept, and the purge of
gallery entries whose consent has expired.

- The audit log keeps events for ``audit_days`` (default and minimum 183, six months: AI Act
  Art. 26(6) asks deployers to keep logs at least that long). Pruning removes the oldest
  events and signs the hash of the last removed one as the chain's new base, so the rest
  still verifies and nobody can cut more without the key; an ``audit.pruned`` event says
  what went.
- Outputs (``outputs_days``, default: kept) recorded by finished runs are deleted with their
  provenance manifest once older than that, but only while the file still has the sha256 the
  run recorded (veil never deletes a file it did not write, or one changed since).
- Gallery entries whose consent expired are removed when the gallery is next used (the
  commands that open it call :func:`purge_expired_consents`), with a ``gallery.consent_expired``
  event per person (a one-way reference, never the name).

Settings live in ``retention.json`` in the data directory (``veil retention set``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..dirs import data_dir
from ..errors import ConfigError
from .log import AuditLog
from .runs import person_ref, record_event

__all__ = ["MIN_AUDIT_DAYS", "Retention", "load_retention", "save_retention", "apply_retention",
           "purge_expired_consents"]

MIN_AUDIT_DAYS = 183


@dataclass(frozen=True)
class Retention:
    audit_days: int = MIN_AUDIT_DAYS
    outputs_days: int | None = None  #: None = outputs are kept

    def __post_init__(self):
        if self.audit_days < MIN_AUDIT_DAYS:
            raise ConfigError(f"audit events are kept at least {MIN_AUDIT_DAYS} days (6 months, AI Act Art. 26(6)); "
                              f"got {self.audit_days}")
        if self.outputs_days is not None and self.outputs_days < 0:
            raise ConfigError(f"outputs_days must be >= 0, got {self.outputs_days}")


def _path() -> Path:
    return data_dir() / "retention.json"


def load_retention() -> Retention:
    p = _path()
    if not p.exists():
        return Retention()
    try:
        return Retention(**json.loads(p.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{p}: not valid retention settings ({exc})") from None


def save_retention(r: Retention) -> Path:
    from ..io.atomic import atomic_output

    p = _path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_output(p, ".json") as tmp:
        tmp.write_text(json.dumps(asdict(r), indent=1), encoding="utf-8")
    return p


def apply_retention(r: Retention, now: dt.datetime | None = None, dry_run: bool = False,
                    log: AuditLog | None = None) -> dict[str, Any]:
    """Delete what the settings say is due; returns (and, unless ``dry_run``, records) what went."""
    from ..io.digest import sha256_now
    from .provenance import manifest_path

    log = log or AuditLog()
    now = now or dt.datetime.now(dt.timezone.utc)
    done: dict[str, Any] = {"outputs_deleted": [], "outputs_kept_changed": [], "audit_pruned": None}
    if r.outputs_days is not None and log.path.exists():
        cutoff = (now - dt.timedelta(days=r.outputs_days)).astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
        runs = log.events(kinds=["run.end"])
        recent = {it.get("output") for ev in runs if ev.ts >= cutoff for it in ev.body.get("items", [])}
        for ev in (e for e in runs if e.ts < cutoff):
            for it in ev.body.get("items", []):
                out, digest = it.get("output"), it.get("output_sha256")
                if not out or not digest or out in recent or not Path(out).is_file():
                    continue  # a later run wrote this path: its own retention applies
                if sha256_now(Path(out)) != digest:
                    done["outputs_kept_changed"].append(out)
                    continue
                if not dry_run:
                    record_event("retention.output_deleted", {"output": out, "output_sha256": digest,
                                                              "run_id": ev.body.get("run_id")}, log)
                    Path(out).unlink()
                    manifest_path(Path(out)).unlink(missing_ok=True)
                done["outputs_deleted"].append(out)
    if log.path.exists():
        audit_cutoff = now - dt.timedelta(days=r.audit_days)
        if dry_run:
            done["audit_pruned"] = {"events": len(log.events(until=audit_cutoff.isoformat())), "dry_run": True}
        else:
            done["audit_pruned"] = log.prune(audit_cutoff, min_days=MIN_AUDIT_DAYS, now=now)
    return done


def _today() -> dt.date:
    return dt.date.today()


def purge_expired_consents(gallery, today: dt.date | None = None) -> list[str]:
    """Remove everyone whose consent has expired from an open :class:`veil.identify.Gallery`,
    recording a ``gallery.consent_expired`` event for each; returns their references."""
    refs = []
    today = today or _today()
    for p in gallery.people():
        if p.expired(today):
            record_event("gallery.consent_expired", {"person": person_ref(p.name), "expired": p.expires,
                                                     "action": "removed with their embeddings"})
            gallery.remove(p.name)
            refs.append(person_ref(p.name))
    return refs
