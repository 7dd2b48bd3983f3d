"""Recording what a command did: a ``run.start`` event before any work, a ``run.end`` event
with the outcome after, and the facts a command adds on the way (input/output hashes, model
ids, settings, counts).

The start event is written before anything is processed, so a log that cannot be written
(corrupt, tampered, wrong key, disk full) stops the command before it touches any input: no
processing goes unrecorded. A start without an end in the log is a run that was killed.

Names of people are never recorded: ``--spare`` / ``--only`` and the gallery commands' names
become counts or a one-way reference (:func:`person_ref`), and settings are recorded with
those fields replaced the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import secrets
from pathlib import Path
from typing import Any, Iterator

from .log import AuditLog, canonical

__all__ = ["RunRecord", "recorded_run", "current_run", "person_ref", "redact_settings", "redact_params",
           "record_event"]

#: parameter / settings names whose values are people's names (or enrolment photos, whose
#: file names often are)
NAME_FIELDS = frozenset({"spare", "only", "name", "old", "new", "photos"})

_current: contextvars.ContextVar["RunRecord | None"] = contextvars.ContextVar("veil_audit_run", default=None)


def person_ref(name: str) -> str:
    """A stable, one-way reference to an enrolled person, so events about the same person can
    be related without the log holding the name."""
    return "person:" + hashlib.sha256(("veil-person:" + name.strip()).encode("utf-8")).hexdigest()[:16]


def _redact(key: str, value: Any) -> Any:
    if key in NAME_FIELDS and value:
        n = len(value) if isinstance(value, (list, tuple)) else 1
        return f"<{n} {'photo(s)' if key == 'photos' else 'name(s)'}, not recorded>"
    return value


def redact_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A config dump with people's names replaced by their count (nested sections too)."""
    return {k: redact_settings(v) if isinstance(v, dict) else _redact(k, v) for k, v in settings.items()}


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    """Command-line parameters as recorded: names redacted, paths as strings, unset ones dropped."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None or v is False or v == () or v == []:
            continue
        if isinstance(v, Path):
            v = str(v)
        elif isinstance(v, (list, tuple)):
            v = [str(x) if isinstance(x, Path) else getattr(x, "value", x) for x in v]
        else:
            v = getattr(v, "value", v)  # enums
        if not isinstance(v, (str, int, float, bool, list)):
            v = str(v)
        out[k] = _redact(k, v)
    return out


class RunRecord:
    """One command's run: its id, and the facts the command adds for the end event."""

    def __init__(self, command: str, log: AuditLog):
        self.command, self.log = command, log
        self.run_id = secrets.token_hex(8)
        self.facts: dict[str, Any] = {}

    def add(self, **facts: Any) -> None:
        self.facts.update(facts)

    def event(self, kind: str, body: dict[str, Any]):
        """A further event in this run (a gallery change, a promotion): tagged with the run id."""
        return self.log.append(kind, {"run_id": self.run_id, **body})


def current_run() -> RunRecord | None:
    """The run being recorded in this context, if any (the API outside the CLI records none)."""
    return _current.get()


def record_event(kind: str, body: dict[str, Any], log: AuditLog | None = None):
    """An event in the current run, or on its own (``log`` or the default log) outside one."""
    run = current_run()
    if run is not None:
        return run.event(kind, body)
    return (log or AuditLog()).append(kind, body)


@contextlib.contextmanager
def recorded_run(command: str, params: dict[str, Any] | None = None, log: AuditLog | None = None) -> Iterator[RunRecord]:
    """Record ``run.start`` now and ``run.end`` (with the exit status and the facts) at exit.

    The exit status comes from an exception's ``exit_code`` (Typer's ``Exit``, veil's errors),
    130 / 143 for Ctrl-C / SIGTERM, 1 (``crashed``) for anything else; the exception is always
    re-raised.
    """
    from .._version import __version__

    log = log or AuditLog()
    run = RunRecord(command, log)
    start = log.append("run.start", {"run_id": run.run_id, "command": command, "veil_version": __version__,
                                     "params": redact_params(params or {})})
    token = _current.set(run)
    status, code = "ok", 0
    try:
        yield run
    except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143, veil.io.interrupts.Terminated)
        from ..io.interrupts import exit_status

        status, code = "interrupted", exit_status(exc)
        raise
    except BaseException as exc:
        given = getattr(exc, "exit_code", None)
        if given is None:
            given = getattr(exc, "code", None) if isinstance(exc, SystemExit) else 1
        code = int(given or 0) if not isinstance(given, str) else 1
        status = "ok" if code == 0 else ("interrupted" if code in (130, 143) else ("failed" if hasattr(exc, "exit_code") else "crashed"))
        raise
    finally:
        _current.reset(token)
        body = {"run_id": run.run_id, "command": command, "status": status, "exit_code": code,
                "start_seq": start.seq, **run.facts}
        # settings are large: store them once, with a hash that identifies them across runs
        if "settings" in body:
            body["settings_sha256"] = hashlib.sha256(canonical(body["settings"])).hexdigest()
        log.append("run.end", body)
