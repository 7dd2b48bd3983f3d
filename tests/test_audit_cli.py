"""Commands record their runs in the audit log, and outputs get signed provenance manifests
that ``veil verify`` checks; on real photos and a real clip, with the real detector."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from conftest import require
from helpers import ffmpeg, run
from veil.audit import AuditLog, person_ref
from veil.audit.runs import redact_params, redact_settings


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def photo(tmp_path, astronaut) -> Path:
    p = tmp_path / "in" / "astronaut.png"
    p.parent.mkdir()
    Image.fromarray(astronaut).save(p)
    return p


@pytest.fixture
def anonymized(photo, tmp_path) -> Path:
    out = tmp_path / "out.jpg"
    res = run("anonymize", photo, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    return out


def test_anonymize_records_its_run_with_hashes_model_and_settings(anonymized, photo):
    log = AuditLog()
    assert log.verify().ok
    start, end = log.events()
    assert (start.kind, end.kind) == ("run.start", "run.end")
    assert start.body["command"] == end.body["command"] == "veil anonymize"
    assert start.body["params"]["inputs"] == [str(photo)] and start.body["run_id"] == end.body["run_id"]
    assert end.body["status"] == "ok" and end.body["exit_code"] == 0 and end.body["start_seq"] == start.seq
    (item,) = end.body["items"]
    assert item["input_sha256"] == sha(photo) and item["output_sha256"] == sha(anonymized)
    assert item["counts"]["anonymized"] >= 1 and end.body["totals"]["ok"] == 1
    assert end.body["model"]["name"] == "centerface" and len(end.body["model"]["sha256"]) == 64
    assert end.body["settings"]["render"]["filter"] == "blur" and len(end.body["settings_sha256"]) == 64
    assert "frames" not in item  # faces and geometry stay in the run report, not the log


def test_failed_run_is_recorded_with_its_exit_code(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    res = run("anonymize", bad, "-o", tmp_path / "o.jpg")
    assert res.exit_code == 3
    end = AuditLog().events()[-1]
    assert end.kind == "run.end" and end.body["status"] == "failed" and end.body["exit_code"] == 3
    assert end.body["items"][0]["status"] == "error"
    assert not (tmp_path / "o.jpg.veil.json").exists()


def test_unwritable_audit_log_stops_the_command_before_any_work(photo, tmp_path, veil_home):
    (veil_home / "audit.sqlite").write_bytes(b"garbage, not a database" * 50)
    out = tmp_path / "out.jpg"
    res = run("anonymize", photo, "-o", out, "-q")
    assert res.exit_code == 7, res.output
    assert "audit log" in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()  # nothing is processed unrecorded


def test_unusable_monitoring_store_is_recorded_not_fatal(photo, tmp_path, veil_home):
    (veil_home / "monitor.sqlite").mkdir()  # cannot be opened as a database
    out = tmp_path / "out.jpg"
    res = run("anonymize", photo, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    end = AuditLog().events()[-1]
    assert end.body["status"] == "ok" and end.body["manifests"] == 1
    assert "monitoring store" in end.body["monitoring_missing"][0]
    assert run("verify", out).exit_code == 0


def test_read_only_commands_are_recorded_too(veil_home):
    assert run("info").exit_code == 0
    assert run("retention", "show").exit_code == 0
    kinds = [(e.kind, e.body["command"]) for e in AuditLog().events()]
    assert kinds == [("run.start", "veil info"), ("run.end", "veil info"),
                     ("run.start", "veil retention show"), ("run.end", "veil retention show")]


def test_verify_accepts_the_output_and_shows_what_was_done(anonymized, photo):
    manifest = anonymized.with_name(anonymized.name + ".veil.json")
    doc = json.loads(manifest.read_text())
    assert doc["output"]["sha256"] == sha(anonymized) and doc["input"]["sha256"] == sha(photo)
    assert doc["model"]["name"] == "centerface" and doc["process"]["action"] == "anonymize"
    assert doc["run_id"] == AuditLog().events()[-1].body["run_id"]
    assert photo.name not in manifest.read_text()  # the input by hash only, not by name
    res = run("verify", anonymized)
    assert res.exit_code == 0 and "OK" in res.output and "centerface" in res.output


def test_verify_fails_on_one_changed_output_byte(anonymized):
    data = bytearray(anonymized.read_bytes())
    data[len(data) // 2] ^= 0x01
    anonymized.write_bytes(bytes(data))
    res = run("verify", anonymized)
    assert res.exit_code == 1 and "the file was changed after veil wrote it" in res.output


@pytest.mark.parametrize("edit", [
    lambda d: d["process"]["counts"].update(anonymized=0),
    lambda d: d["model"].update(name="another-model"),
    lambda d: d["input"].update(sha256="0" * 64),
], ids=["counts", "model", "input"])
def test_verify_fails_on_an_edited_manifest(anonymized, edit):
    manifest = anonymized.with_name(anonymized.name + ".veil.json")
    doc = json.loads(manifest.read_text())
    edit(doc)
    manifest.write_text(json.dumps(doc))
    res = run("verify", anonymized)
    assert res.exit_code == 1 and "signature is invalid" in res.output


def test_verify_without_a_manifest_fails(tmp_path, photo):
    res = run("verify", photo)
    assert res.exit_code == 1 and "no provenance manifest" in res.output


def test_verify_checks_the_key_it_trusts(anonymized, tmp_path, monkeypatch):
    pub = tmp_path / "veil.pub"
    assert run("audit", "key", "--out", pub).exit_code == 0
    monkeypatch.setenv("VEIL_HOME", str(tmp_path / "elsewhere"))  # a machine with another key
    run("audit", "key")
    res = run("verify", anonymized)
    assert res.exit_code == 1 and "not by the trusted key" in res.output
    res = run("verify", anonymized, "--public-key", pub)
    assert res.exit_code == 0, res.output


def test_folder_run_signs_every_output(photo, grace_hopper, tmp_path):
    Image.fromarray(grace_hopper).save(photo.parent / "hopper.jpg", quality=95)
    out = tmp_path / "outdir"
    assert run("anonymize", photo.parent, "-o", out, "-q").exit_code == 0
    outputs = sorted(p for p in out.rglob("*") if not p.name.endswith(".veil.json"))
    assert [p.name for p in outputs] == ["astronaut.png", "hopper.jpg"]
    for p in outputs:
        assert run("verify", p).exit_code == 0
    assert len(AuditLog().events()[-1].body["items"]) == 2


def test_video_output_verifies(hamilton, tmp_path):
    clip = hamilton
    out = tmp_path / "h.mp4"
    res = run("anonymize", clip, "-o", out, "--start", "1", "--end", "2", "-q")
    assert res.exit_code == 0, res.output
    assert run("verify", out).exit_code == 0
    item = AuditLog().events()[-1].body["items"][0]
    assert item["kind"] == "video" and item["input_sha256"] == sha(clip) and item["counts"]["frames"] > 10


def test_names_are_redacted():
    assert redact_params({"spare": ["Ada", "Bob"], "only": None, "input": Path("a.jpg"), "quiet": False}) == \
        {"spare": "<2 name(s), not recorded>", "input": "a.jpg"}
    s = redact_settings({"identify": {"spare": ["Ada"], "only": [], "match_threshold": 0.6}, "render": {"filter": "blur"}})
    assert s == {"identify": {"spare": "<1 name(s), not recorded>", "only": [], "match_threshold": 0.6},
                 "render": {"filter": "blur"}}
    assert person_ref("Ada") == person_ref(" Ada ") != person_ref("Bob")


def test_gallery_changes_are_recorded_without_names(data_dir, tmp_path, veil_home):
    pytest.importorskip("dlib")
    photos = data_dir / "reid" / "face_recognition" / "examples_top"
    require(photos, "reid/face_recognition")
    g = ["--gallery", tmp_path / "g.sqlite"]
    assert run("gallery", "add", "obama", photos / "obama.jpg", "--expires", "2999-12-31", *g).exit_code == 0
    assert run("anonymize", photos / "two_people.jpg", "-o", tmp_path / "o.jpg", "--spare", "obama", *g, "-q").exit_code == 0
    assert run("gallery", "rename", "obama", "barack", *g).exit_code == 0
    assert run("gallery", "remove", "barack", *g).exit_code == 0
    log = AuditLog()
    assert log.verify().ok
    changes = [e for e in log.events() if e.kind.startswith("gallery.")]
    assert [e.kind for e in changes] == ["gallery.enrol", "gallery.rename", "gallery.remove"]
    assert changes[0].body["person"] == changes[1].body["person"] == person_ref("obama")
    assert changes[1].body["now"] == changes[2].body["person"] == person_ref("barack")
    assert changes[0].body["expires"] == "2999-12-31" and changes[0].body["photos"] == 1
    assert all(e.body["run_id"] for e in changes)
    con = sqlite3.connect(log.path)
    dump = "\n".join(con.iterdump()).lower()
    con.close()
    assert "obama" not in dump and "barack" not in dump  # names never reach the log


def test_stream_recorded_to_a_file_is_signed(hamilton, tmp_path):
    import subprocess
    import sys

    clip = hamilton
    out = tmp_path / "live.mp4"
    feed = subprocess.Popen([ffmpeg(), "-loglevel", "error", "-i", str(clip), "-t", "1",
                             "-f", "mpegts", "-"], stdout=subprocess.PIPE)
    res = subprocess.run([sys.executable, "-m", "veil", "stream", "-", "-o", str(out), "--no-live", "-q"],
                         stdin=feed.stdout, capture_output=True, text=True, timeout=300)
    feed.wait(timeout=60)
    assert res.returncode == 0, res.stderr
    end = AuditLog().events(kinds=["run.end"])[-1]
    assert end.body["command"] == "veil stream" and end.body["items"][0]["output_sha256"] == sha(out)
    assert run("verify", out).exit_code == 0
