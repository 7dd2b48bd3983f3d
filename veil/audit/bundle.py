"""Exports of the audit log: a machine-readable bundle (JSON) that a third party can verify
on its own, and a readable one-line-per-event summary."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ..errors import AuditError
from .keys import PublicKey
from .log import AuditLog, ChainReport, Checkpoint, Event, current_actor, verify_chain

__all__ = ["BUNDLE_FORMAT", "export_bundle", "verify_bundle", "check_anchor", "summary_line"]

BUNDLE_FORMAT = "veil-audit-export/1"


def export_bundle(log: AuditLog, since: str | None = None) -> dict[str, Any]:
    """The events since ``since`` up to the signed head, the checkpoint, and the log's own
    verification; the checkpoint doubles as an anchor for later ``verify --anchor``."""
    report = log.verify()
    events = log.events(since=since)
    return {"format": BUNDLE_FORMAT, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "exported_by": current_actor(), "log": str(log.path), "since": since,
            "events": [e.as_dict() for e in events], "checkpoint": _cp(log), "verification": report.as_dict()}


def _cp(log: AuditLog) -> dict[str, Any] | None:
    cp = log.checkpoint()
    return cp.as_dict() if cp else None


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(f"cannot read audit export {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise AuditError(f"{path} is not a veil audit export ({BUNDLE_FORMAT})")
    return doc


def verify_bundle(path: Path, public: PublicKey | None = None) -> ChainReport:
    """Verify an export on its own: the events link up and end at the signed checkpoint."""
    doc = _load(path)
    try:
        events = [Event.from_dict(e) for e in doc["events"]]
        cp = Checkpoint.from_dict(doc["checkpoint"]) if doc.get("checkpoint") else None
    except (KeyError, TypeError, ValueError) as exc:
        return ChainReport(problems=[f"export {path} is incomplete ({exc.__class__.__name__}: {exc})"])
    whole = not events or events[0].seq == 1
    return verify_chain(events, cp, public, start_prev=None if not whole else "0" * 64,
                        expect_first_seq=1 if whole else None)


def check_anchor(report: ChainReport, log: AuditLog, anchor: Path, public: PublicKey | None) -> None:
    """Add to ``report`` whether the log still holds the checkpoint saved in an earlier export
    (catches a log rolled back to an older copy, or truncated, since that export)."""
    doc = _load(anchor)
    if not doc.get("checkpoint"):
        report.problems.append(f"anchor {anchor} has no checkpoint")
        return
    cp = Checkpoint.from_dict(doc["checkpoint"])
    key = public or PublicKey.from_hex(cp.public_key)
    if not cp.valid(key):
        report.problems.append(f"anchor {anchor}: its checkpoint signature is invalid for key {key.key_id}")
        return
    match = [e for e in log.events() if e.seq == cp.seq]
    if not match:
        report.problems.append(f"anchor {anchor}: event {cp.seq} (signed {cp.ts}) is no longer in the log: "
                               "the log was truncated or rolled back")
    elif match[0].hash != cp.hash:
        report.problems.append(f"anchor {anchor}: event {cp.seq} differs from the one signed {cp.ts}: "
                               "the log was rewritten")
    else:
        report.notes.append(f"log extends the checkpoint in {anchor} (event {cp.seq}, {cp.ts})")


def summary_line(e: Event) -> str:
    """One readable line per event; large fields (settings, items, params) are counted."""
    b = e.body
    parts = []
    for k, v in b.items():
        if k in ("settings", "model", "params"):
            continue
        if k == "items":
            parts.append(f"items={len(v)}")
        elif isinstance(v, (dict, list)):
            parts.append(f"{k}={json.dumps(v, separators=(',', ':'), sort_keys=True)}")
        else:
            parts.append(f"{k}={v}")
    if isinstance(b.get("model"), dict) and b["model"].get("name"):
        parts.append(f"model={b['model']['name']}:{str(b['model'].get('sha256', ''))[:12]}")
    return f"{e.seq:>6}  {e.ts[:19]}Z  {e.actor}  {e.kind}  " + " ".join(parts)
