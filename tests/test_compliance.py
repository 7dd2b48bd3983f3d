"""The compliance pack, written from a real log: activity counts match the runs, the DPIA
draft and instructions carry the processing facts, the export verifies, no names leak."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import numpy as np
from PIL import Image

from helpers import run
from veil.audit import AuditLog
from veil.audit.retention import purge_expired_consents
from veil.identify.gallery import Gallery


def test_compliance_pack_from_a_real_log(tmp_path, astronaut, grace_hopper):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.png")
    Image.fromarray(grace_hopper).save(src / "b.jpg")
    assert run("anonymize", src, "-o", tmp_path / "out", "-q").exit_code == 0
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    assert run("anonymize", tmp_path / "bad.jpg", "-o", tmp_path / "x.jpg").exit_code == 3
    with Gallery(tmp_path / "g.sqlite", create=True) as g:  # a consent that runs out, purged (and logged)
        g.add("Ada Lovelace", np.ones((1, 128), np.float32) / np.sqrt(128), "m", expires=dt.date.today() + dt.timedelta(days=1))
        assert purge_expired_consents(g, today=dt.date.today() + dt.timedelta(days=2))
    res = run("compliance", "report", "--since", "2000-01-01", "--out", tmp_path / "pack")
    assert res.exit_code == 0, res.output
    pack = tmp_path / "pack"
    assert sorted(p.name for p in pack.iterdir()) == ["activity.json", "activity.md", "audit_export.json",
                                                       "dpia_draft.md", "instructions_for_use.md"]
    doc = json.loads((pack / "activity.json").read_text())
    act = doc["activity"]
    assert doc["audit_verification"]["ok"]
    assert act["runs_by_command"] == {"veil anonymize": 2}
    assert act["runs_by_status"] == {"ok": 1, "failed": 1} and act["runs_without_end"] == 0
    assert act["files"] == {"processed": 3, "ok": 2, "error": 1}
    assert act["gallery_changes"] == {"gallery.consent_expired": 1}
    assert act["face_detections_hidden"] >= 2 and act["models_used"] == {f"centerface:{doc['models'][0]['sha256'][:12]}": 2}
    assert {m["name"] for m in doc["models"]} >= {"centerface", "dlib_face_recognition_resnet_model_v1"}
    dpia = (pack / "dpia_draft.md").read_text()
    assert "3 files" in dpia and "TO COMPLETE" in dpia and "183 days" in dpia
    instr = (pack / "instructions_for_use.md").read_text()
    assert "### centerface (detector)" in instr and "intended use" in instr
    assert run("audit", "verify", "--bundle", pack / "audit_export.json").exit_code == 0
    everything = "".join(p.read_text() for p in pack.iterdir())
    assert "Ada" not in everything and "Lovelace" not in everything


def test_compliance_pack_says_when_the_log_is_broken(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    assert run("anonymize", tmp_path / "a.png", "-o", tmp_path / "o.png", "-q").exit_code == 0
    con = sqlite3.connect(AuditLog().path)
    con.execute("UPDATE events SET actor = 'user:mallory' WHERE seq = 1")
    con.commit()
    con.close()
    res = run("compliance", "report", "--out", tmp_path / "pack")
    assert res.exit_code == 1 and "FAILED verification" in res.output and "event 1: content does not match" in res.output
    assert "Audit log verification: **FAILED**" in (tmp_path / "pack" / "activity.md").read_text()
    assert not json.loads((tmp_path / "pack" / "activity.json").read_text())["audit_verification"]["ok"]
