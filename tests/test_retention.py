"""Retention: audit events kept >= 6 months and pruned with a signed base; outputs deleted
only while unchanged; expired gallery consents purged at use with an audit event."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pytest
from PIL import Image

from helpers import run
from veil.audit import AuditLog, person_ref
from veil.audit.retention import MIN_AUDIT_DAYS, Retention, apply_retention, load_retention, purge_expired_consents
from veil.errors import AuditError, ConfigError
from veil.identify.gallery import Gallery


LATER = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)


def test_audit_retention_cannot_go_below_six_months(tmp_path):
    with pytest.raises(ConfigError, match="at least 183 days"):
        Retention(audit_days=30)
    res = run("retention", "set", "--audit-days", "90")
    assert res.exit_code == 2 and "183" in res.output
    assert run("retention", "set", "--audit-days", "400", "--outputs-days", "30").exit_code == 0
    assert load_retention() == Retention(audit_days=400, outputs_days=30)
    body = AuditLog().events(kinds=["retention.settings"])[-1].body
    assert (body["audit_days"], body["outputs_days"]) == (400, 30)
    log = AuditLog()
    with pytest.raises(AuditError, match="kept at least 183 days"):
        log.prune(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10), MIN_AUDIT_DAYS)


def test_pruning_keeps_a_verifiable_chain_that_cannot_be_cut_further():
    log = AuditLog()
    for i in range(4):
        log.append("test.event", {"i": i})
    assert log.prune(LATER - dt.timedelta(days=MIN_AUDIT_DAYS), MIN_AUDIT_DAYS, now=LATER)["events"] == 4
    events = log.events()
    assert [e.kind for e in events] == ["audit.pruned"] and events[0].seq == 5
    rep = log.verify()
    assert rep.ok and "were pruned by retention" in rep.notes[0], rep.problems
    log.append("test.event", {"i": "after"})
    assert log.verify().ok
    con = sqlite3.connect(log.path, isolation_level=None)
    con.execute("DELETE FROM events WHERE seq = 5")  # cutting more without the key...
    con.close()
    assert "event(s) 5 missing" in " ".join(log.verify().problems)  # ...shows


def test_forged_base_is_detected():
    log = AuditLog()
    for i in range(3):
        log.append("test.event", {"i": i})
    log.prune(LATER - dt.timedelta(days=MIN_AUDIT_DAYS), MIN_AUDIT_DAYS, now=LATER)
    con = sqlite3.connect(log.path, isolation_level=None)
    con.execute("UPDATE meta SET value = replace(value, '\"seq\": 3', '\"seq\": 2') WHERE key = 'base'")
    con.close()
    problems = " ".join(log.verify().problems)
    assert "invalid signature" in problems


def test_outputs_past_retention_are_deleted_unless_changed(tmp_path, astronaut):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    outs = [tmp_path / "o1.png", tmp_path / "o2.png"]
    for o in outs:
        assert run("anonymize", src, "-o", o, "-q").exit_code == 0
    outs[1].write_bytes(outs[1].read_bytes() + b"changed")  # not the file veil wrote any more
    r = Retention(audit_days=1000, outputs_days=30)
    assert apply_retention(r)["outputs_deleted"] == []  # nothing is 30 days old yet
    dry = apply_retention(r, now=LATER, dry_run=True)
    assert dry["outputs_deleted"] == [str(outs[0])] and outs[0].exists()
    done = apply_retention(r, now=LATER)
    assert done["outputs_deleted"] == [str(outs[0])] and done["outputs_kept_changed"] == [str(outs[1])]
    assert not outs[0].exists() and not (tmp_path / "o1.png.veil.json").exists() and outs[1].exists()
    assert done["audit_pruned"] is None  # 1000 days: nothing old enough
    log = AuditLog()
    assert log.verify().ok
    assert [e.body["output"] for e in log.events(kinds=["retention.output_deleted"])] == [str(outs[0])]
    done = apply_retention(Retention(outputs_days=30), now=LATER)  # 183 days: the runs are old enough then
    assert done["outputs_deleted"] == [] and done["audit_pruned"]["events"] >= 5
    assert log.verify().ok


def test_an_output_rewritten_by_a_later_run_is_not_deleted(tmp_path, astronaut):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "o.png"
    assert run("anonymize", src, "-o", out, "-q").exit_code == 0
    assert run("anonymize", src, "-o", out, "-q", "--overwrite").exit_code == 0  # same bytes, a newer run
    first, second = (e.body["items"][0]["output_sha256"] for e in AuditLog().events(kinds=["run.end"]))
    assert first == second  # same bytes: only the later run's record can save the file
    cutoff_between = AuditLog().events(kinds=["run.start"])[-1].ts
    now = dt.datetime.fromisoformat(cutoff_between) + dt.timedelta(days=30)
    done = apply_retention(Retention(audit_days=1000, outputs_days=30), now=now)
    assert done["outputs_deleted"] == [] and out.exists()


def _vec(seed):
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_expired_consent_is_purged_at_use_with_an_event(tmp_path):
    path = tmp_path / "g.sqlite"
    soon = dt.date.today() + dt.timedelta(days=1)
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m", expires=soon)
        g.add("bob", _vec(2)[None], "m")
        assert purge_expired_consents(g) == []
        assert purge_expired_consents(g, today=soon + dt.timedelta(days=1)) == [person_ref("ann")]
        assert g.names() == ["bob"]
    (ev,) = AuditLog().events(kinds=["gallery.consent_expired"])
    assert ev.body["person"] == person_ref("ann") and ev.body["expired"] == soon.isoformat()
    assert b"ann" not in AuditLog().path.read_bytes()


def test_gallery_commands_purge_expired_consents(tmp_path, monkeypatch):
    import veil.audit.retention as retention

    path = tmp_path / "g.sqlite"
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m", expires=dt.date.today() + dt.timedelta(days=1))
    res = run("gallery", "list", "--gallery", path)
    assert res.exit_code == 0 and "ann" in res.output
    monkeypatch.setattr(retention, "_today", lambda: dt.date.today() + dt.timedelta(days=2))  # the consent ran out
    res = run("gallery", "list", "--gallery", path)
    assert res.exit_code == 0 and "nobody is enrolled" in res.output
    assert [e.kind for e in AuditLog().events(kinds=["gallery."])] == ["gallery.consent_expired"]
