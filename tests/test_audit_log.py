"""The audit log: hash chain, signed checkpoint, tamper detection, concurrent and killed
writers, a full disk, corrupt files and wrong keys; export, anchors and ``veil audit``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veil.audit import AuditLog, load_key
from veil.audit.log import canonical
from veil.cli.main import app
from veil.errors import AuditError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def log(veil_home) -> AuditLog:
    lg = AuditLog()
    for i in range(5):
        lg.append("test.event", {"i": i, "note": f"event {i}"})
    return lg


def sql(log: AuditLog, *statements):
    con = sqlite3.connect(log.path, isolation_level=None)
    for s in statements:
        con.execute(*s) if isinstance(s, tuple) else con.execute(s)
    con.close()


def problems(log: AuditLog) -> str:
    rep = log.verify()
    assert not rep.ok
    return " | ".join(rep.problems)


def test_append_builds_a_linked_signed_chain(log, veil_home):
    events = log.events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev == "0" * 64
    assert all(b.prev == a.hash for a, b in zip(events, events[1:]))
    assert all(e.computed_hash() == e.hash for e in events)
    assert events[0].actor.startswith("user:") and events[2].body == {"i": 2, "note": "event 2"}
    rep = log.verify()
    assert rep.ok and rep.events == 5 and rep.checkpoint_seq == 5 and not rep.notes
    key = veil_home / "signing.key"
    assert key.stat().st_mode & 0o777 == 0o600 and log.path.stat().st_mode & 0o777 == 0o600
    assert log.checkpoint().key_id == load_key(key).key_id


def _rewrite_hash(log, seq):
    """An attacker who edits an event and recomputes its hash (but cannot sign)."""
    ev = next(e for e in log.events() if e.seq == seq)
    body = {**ev.body, "note": "forged"}
    forged = type(ev)(ev.seq, ev.ts, ev.actor, ev.kind, body, ev.prev, "")
    sql(log, ("UPDATE events SET body = ?, hash = ? WHERE seq = ?",
              (canonical(body).decode(), forged.computed_hash(), seq)))


def _forge_tail(log):
    """Rewrite event 5, recompute its hash and put that hash in the checkpoint, so every link
    holds; only the checkpoint's signature can tell."""
    _rewrite_hash(log, 5)
    con = sqlite3.connect(log.path, isolation_level=None)
    cp = json.loads(con.execute("SELECT value FROM meta WHERE key = 'checkpoint'").fetchone()[0])
    cp["hash"] = con.execute("SELECT hash FROM events WHERE seq = 5").fetchone()[0]
    con.execute("UPDATE meta SET value = ? WHERE key = 'checkpoint'", (json.dumps(cp),))
    con.close()


def _swap(log):
    a, b = [e for e in log.events() if e.seq in (2, 3)]
    sql(log, "UPDATE events SET seq = -1 WHERE seq = 2", "UPDATE events SET seq = 2 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = -1")


def _insert(log):
    """Shift events 3.. up by one and put a made-up event at 3, linked to event 2."""
    ev2 = next(e for e in log.events() if e.seq == 2)
    sql(log, "UPDATE events SET seq = seq + 100 WHERE seq >= 3", "UPDATE events SET seq = seq - 99 WHERE seq >= 103")
    fake = type(ev2)(3, ev2.ts, ev2.actor, "test.event", {"i": 99}, ev2.hash, "")
    sql(log, ("INSERT INTO events VALUES (?,?,?,?,?,?,?)",
              (3, fake.ts, fake.actor, fake.kind, canonical(fake.body).decode(), fake.prev, fake.computed_hash())))


@pytest.mark.parametrize("tamper, expected", [
    (lambda lg: sql(lg, "UPDATE events SET body = replace(body, 'event 2', 'event X') WHERE seq = 3"), "event 3: content does not match its hash: edited"),
    (lambda lg: sql(lg, "UPDATE events SET actor = 'user:someone-else' WHERE seq = 1"), "event 1: content does not match its hash: edited"),
    (lambda lg: _rewrite_hash(lg, 2), "event 3: does not link to the event before it"),
    (lambda lg: _rewrite_hash(lg, 5), "event 5 differs from the signed checkpoint: it was rewritten"),
    (_forge_tail, "invalid signature"),
    (lambda lg: sql(lg, "DELETE FROM events WHERE seq = 3"), "event(s) 3 missing: deleted"),
    (lambda lg: sql(lg, "DELETE FROM events WHERE seq = 5"), "signed checkpoint names event 5, but the log ends at event 4"),
    (lambda lg: sql(lg, "DELETE FROM events WHERE seq = 1"), "event(s) 1 missing: deleted"),
    (lambda lg: sql(lg, "DELETE FROM events"), "signed checkpoint names event 5, but the log has no events"),
    (lambda lg: sql(lg, "DELETE FROM meta WHERE key = 'checkpoint'"), "no signed checkpoint"),
    (_insert, "event 4: does not link to the event before it"),
    (_swap, "event 2: does not link"),
], ids=["edit-body", "edit-actor", "edit-and-rehash", "rehash-last", "forge-tail", "delete-middle", "delete-last", "delete-first",
        "delete-all", "drop-checkpoint", "insert", "reorder"])
def test_verify_detects_tampering(log, tamper, expected):
    assert log.verify().ok
    tamper(log)
    assert expected in problems(log)


def test_reorder_is_named(log):
    _swap(log)
    text = problems(log)
    assert "event 2: does not link" in text and "event 3: does not link" in text


def test_append_refuses_a_tampered_head(log):
    _forge_tail(log)
    with pytest.raises(AuditError, match="does not match the signed checkpoint"):
        log.append("test.event", {"i": 6})
    assert len(log.events()) == 5


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_database_is_a_clear_error_never_a_new_chain(log, damage):
    data = log.path.read_bytes()
    log.path.write_bytes(b"this is not sqlite" * 100 if damage == "garbage" else data[: len(data) // 3])
    before = log.path.read_bytes()
    with pytest.raises(AuditError) as info:
        log.append("test.event", {"i": 6})
    assert str(log.path) in str(info.value) and "\n" not in str(info.value)
    assert log.path.read_bytes() == before  # nothing written over the evidence
    assert not log.verify().ok
    res = cli("audit", "verify")
    assert res.exit_code == 1 and "FAILED" in res.output


def test_missing_key_with_a_signed_log_is_refused(log, veil_home):
    (veil_home / "signing.key").unlink()
    with pytest.raises(AuditError, match="is missing.*restore the key"):
        log.append("test.event", {})
    assert not (veil_home / "signing.key").exists()  # no silent new key


def test_wrong_key_is_refused(log, veil_home):
    other = AuditLog(veil_home / "other.sqlite", key_path=veil_home / "other.key")
    other.append("test.event", {})
    shutil.copy(veil_home / "other.key", veil_home / "signing.key")
    with pytest.raises(AuditError, match="is not the key that signs the audit log"):
        AuditLog().append("test.event", {})
    rep = AuditLog().verify()
    assert "not by the expected key" in " ".join(rep.problems)


def test_key_readable_by_others_is_refused(log, veil_home):
    (veil_home / "signing.key").chmod(0o644)
    with pytest.raises(AuditError, match="chmod 600"):
        AuditLog().append("test.event", {})


def test_damaged_key_file_is_a_clear_error(log, veil_home):
    (veil_home / "signing.key").write_text("not a key")
    with pytest.raises(AuditError, match="not an unencrypted PEM private key"):
        AuditLog().append("test.event", {})


class _SmallDisk(AuditLog):
    """A log whose database cannot grow: SQLite's max_page_count makes writes fail with
    SQLITE_FULL, the same error a full disk gives."""

    def _connect(self, create):
        con = super()._connect(create)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages}")
        return con


def test_full_disk_fails_the_append_and_keeps_the_chain(log):
    small = _SmallDisk(log.path)
    small.append("test.event", {"small": 1})  # fits in the free space of existing pages
    with pytest.raises(AuditError, match="disk full, the event was NOT recorded"):
        small.append("test.event", {"big": "x" * 200_000})
    rep = log.verify()
    assert rep.ok and rep.events == 6
    log.append("test.event", {"after": True})
    assert log.verify().ok and log.verify().events == 7


_WRITER = textwrap.dedent("""
    import sys
    from veil.audit import AuditLog
    log = AuditLog()
    for i in range(int(sys.argv[2])):
        log.append("test.concurrent", {"writer": sys.argv[1], "i": i})
""")


def test_two_processes_writing_at_once_keep_one_linear_chain(veil_home):
    n = 40
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    AuditLog().append("test.start", {})  # the key exists before both start (they could also race for it)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, w, str(n)], env=env, cwd=ROOT) for w in "ab"]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    log = AuditLog()
    rep = log.verify()
    assert rep.ok, rep.problems
    events = log.events(kinds=["test.concurrent"])
    assert len(events) == 2 * n
    for w in "ab":  # each writer's events are all there, in its own order
        assert [e.body["i"] for e in events if e.body["writer"] == w] == list(range(n))


def test_two_processes_creating_the_key_at_once_agree(veil_home):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, w, "5"], env=env, cwd=ROOT) for w in "ab"]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rep = AuditLog().verify()
    assert rep.ok and rep.events == 10, rep.problems


_KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from veil.audit import log as audit_log
    lg = audit_log.AuditLog()
    real_sign = audit_log.SigningKey.sign

    def sign_then_hang(self, message):
        sig = real_sign(self, message)
        Path(sys.argv[1]).write_text("inside")  # the event row is inserted, not committed
        time.sleep(600)
        return sig

    audit_log.SigningKey.sign = sign_then_hang
    lg.append("test.killed", {"never": "committed"})
""")


def test_writer_killed_mid_append_loses_nothing_committed(log, tmp_path):
    marker = tmp_path / "inside"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(marker)], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never reached the append"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    rep = log.verify()
    assert rep.ok and rep.events == 5, rep.problems  # the half-done append was rolled back
    log.append("test.event", {"after": "kill"})
    assert log.verify().ok and [e.kind for e in log.events()][-1] == "test.event"


def test_events_since_and_kind(log):
    all_ = log.events()
    assert log.events(since=all_[2].ts) == all_[2:]
    assert log.events(until=all_[2].ts) == all_[:2]
    assert log.events(since="2999-01-01") == []
    assert log.events(kinds=["test"]) == all_ and log.events(kinds=["run"]) == []
    with pytest.raises(AuditError, match="expected a date"):
        log.events(since="last tuesday")


def test_export_bundle_verifies_on_its_own_and_catches_edits(log, tmp_path):
    out = tmp_path / "export.json"
    res = cli("audit", "export", "--out", out)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert len(doc["events"]) == 5 and doc["checkpoint"]["seq"] == 5 and doc["verification"]["ok"]
    assert cli("audit", "verify", "--bundle", out).exit_code == 0
    since = tmp_path / "since.json"
    assert cli("audit", "export", "--out", since, "--since", doc["events"][3]["ts"]).exit_code == 0
    assert len(json.loads(since.read_text())["events"]) == 2
    assert cli("audit", "verify", "--bundle", since).exit_code == 0
    doc["events"][1]["body"]["note"] = "changed"
    out.write_text(json.dumps(doc))
    res = cli("audit", "verify", "--bundle", out)
    assert res.exit_code == 1 and "event 2: content does not match its hash" in res.output


def test_anchor_catches_a_log_rolled_back_to_an_older_copy(log, tmp_path):
    old_copy = tmp_path / "old.sqlite"
    shutil.copy(log.path, old_copy)
    log.append("test.event", {"i": 5})
    anchor = tmp_path / "anchor.json"
    assert cli("audit", "export", "--out", anchor).exit_code == 0
    assert cli("audit", "verify", "--anchor", anchor).exit_code == 0
    shutil.copy(old_copy, log.path)  # the old file is a perfectly valid chain on its own...
    assert cli("audit", "verify").exit_code == 0
    res = cli("audit", "verify", "--anchor", anchor)  # ...but not the log the anchor saw
    assert res.exit_code == 1 and "event 6" in res.output and "truncated or rolled back" in res.output


def test_verify_against_a_given_public_key(log, tmp_path):
    pub = tmp_path / "pub.txt"
    res = cli("audit", "key", "--out", pub)
    assert res.exit_code == 0 and pub.read_text().strip() in res.output
    assert cli("audit", "verify", "--public-key", pub).exit_code == 0
    other = AuditLog(tmp_path / "o.sqlite", key_path=tmp_path / "o.key")
    other.append("x", {})
    pub.write_text(load_key(tmp_path / "o.key").public.hex)
    res = cli("audit", "verify", "--public-key", pub, "--json")
    assert res.exit_code == 1 and "not by the expected key" in res.output


def test_show_prints_one_line_per_event(log):
    res = cli("audit", "show", "--limit", "2")
    assert res.exit_code == 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 2 and lines[0].split()[0] == "4" and "test.event" in lines[0] and "note=event 4" in lines[1]


def test_audit_commands_work_without_a_log(veil_home):
    res = cli("audit", "verify")
    assert res.exit_code == 1 and "no audit log" in res.output
    assert not (veil_home / "audit.sqlite").exists()


def _terminated():
    from veil.io.interrupts import Terminated

    return Terminated(signal.SIGTERM)


@pytest.mark.parametrize("exc, status, code", [
    (_terminated, "interrupted", 143),
    (KeyboardInterrupt, "interrupted", 130),
    (lambda: AuditError("x"), "failed", 7),
    (lambda: RuntimeError("bug"), "crashed", 1),
], ids=["sigterm", "ctrl-c", "veil-error", "bug"])
def test_run_end_records_how_a_run_stopped(veil_home, exc, status, code):
    from veil.audit import recorded_run

    raised = exc()
    with pytest.raises(type(raised)):
        with recorded_run("veil test", {}):
            raise raised
    start, end = AuditLog().events()
    assert (end.body["status"], end.body["exit_code"], end.body["start_seq"]) == (status, code, start.seq)
