"""Selective anonymization by identity: gallery (encryption, keys, deletion, bad input),
voting, policies, enrolment checks on real photos, the CLI. The video targets (hamilton)
are in test_identify_video.py."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3

import numpy as np
import pytest

from conftest import require
from veil.config import Config
from veil.errors import ConfigError
from veil.faces import ANONYMIZE, KEEP, Faces
from veil.identify.gallery import Gallery, GalleryError, GalleryKeyError, KEY_ENV
from veil.identify.track_identity import (MATCH, PENDING, UNCERTAIN, UNKNOWN, Matcher, TrackIdentifier, _Vote,
                                          verdict)
from veil.policy import AllMustKeep, AnonymizeAll
from veil.policy.identity import OnlyIdentities, SpareIdentities


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(KEY_ENV, raising=False)


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


# -- gallery -------------------------------------------------------------------------------
def test_gallery_encrypts_renames_and_really_deletes(tmp_path):
    path = tmp_path / "g.sqlite"
    a = _vec(1)
    with Gallery(path, create=True) as g:
        g.add("Ada Lovelace", a[None], "m", purpose="interview")
        g.add("bob", _vec(2)[None], "m", expires=dt.date.today() + dt.timedelta(days=1))
        assert [p.name for p in g.people()] == ["Ada Lovelace", "bob"]
        names, vecs = g.embeddings("m")
        assert names == ["Ada Lovelace", "bob"] and np.allclose(vecs[0], a)
        g.rename("bob", "robert")
        assert "robert" in g and "bob" not in g
    key = path.with_suffix(".key")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    raw = path.read_bytes()
    assert a.astype("<f4").tobytes()[:16] not in raw  # encrypted at rest
    assert b"Ada Lovelace" in raw
    with Gallery(path) as g:
        g.remove("Ada Lovelace")
        assert g.names() == ["robert"]
    raw = path.read_bytes()
    assert b"Ada Lovelace" not in raw and b"interview" not in raw  # secure_delete + VACUUM
    assert not path.with_name(path.name + "-journal").exists()


def test_gallery_bad_input(tmp_path, monkeypatch):
    path = tmp_path / "g.sqlite"
    with pytest.raises(GalleryError, match="no gallery"):
        Gallery(path)
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m")
        with pytest.raises(GalleryError, match="already enrolled"):
            g.add("ann", _vec(2)[None], "m")
        with pytest.raises(GalleryError, match="nobody is enrolled as 'zed'"):
            g.remove("zed")
        with pytest.raises(ConfigError, match="past"):
            g.add("old", _vec(3)[None], "m", expires=dt.date(2000, 1, 1))
    # wrong key: an error, never an empty gallery
    monkeypatch.setenv(KEY_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())
    with pytest.raises(GalleryKeyError, match="wrong key"):
        Gallery(path)
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(GalleryKeyError, match="malformed"):
        Gallery(path)
    monkeypatch.delenv(KEY_ENV)
    key = path.with_suffix(".key")
    key.chmod(0o644)
    with pytest.raises(GalleryKeyError, match="readable by others"):
        Gallery(path)
    key.unlink()
    with pytest.raises(GalleryKeyError, match="no gallery key"):
        Gallery(path)
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(GalleryError, match="empty"):
        Gallery(empty)
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(GalleryError, match="corrupt"):
        Gallery(corrupt, key_file=tmp_path / "k", create=True)
    monkeypatch.setenv(KEY_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(GalleryError, match="not a veil gallery"):
        Gallery(other, key_file=tmp_path / "k2", create=True)  # an SQLite file, but not ours


def test_expired_entries_are_ignored(tmp_path):
    with Gallery(tmp_path / "g.sqlite", create=True) as g:
        g.add("ann", _vec(1)[None], "m", expires=dt.date.today() + dt.timedelta(days=2))
        assert g.embeddings("m")[0] == ["ann"]
        assert g.embeddings("m", today=dt.date.today() + dt.timedelta(days=3))[0] == []


def test_tampered_blob_fails_loudly(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m")
        g.add("bob", _vec(2)[None], "m")
        # move bob's embedding to ann: bound to the person id, so it does not decrypt
        g._db.execute("UPDATE embeddings SET person_id = (SELECT id FROM people WHERE name='ann')")
        with pytest.raises(GalleryError, match="integrity"):
            g.embeddings("m")


def test_consent_records_cannot_be_edited_without_the_key(tmp_path):
    """Issue #10 item 6: names, purpose and expiry are sealed with the key."""
    path = tmp_path / "g.sqlite"
    soon = dt.date.today() + dt.timedelta(days=1)
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m", expires=soon)
        g.add("bob", _vec(2)[None], "m")
    edits = [
        "UPDATE people SET expires = '2999-12-31' WHERE name = 'ann'",  # extend a consent
        "UPDATE people SET expires = NULL WHERE name = 'ann'",
        "UPDATE people SET purpose = 'anything' WHERE name = 'bob'",
        # swap the two names, so that --spare ann would spare bob
        "UPDATE people SET name = 'x' WHERE name = 'ann'; UPDATE people SET name = 'ann' WHERE name = 'bob'; "
        "UPDATE people SET name = 'bob' WHERE name = 'x'",
    ]
    backup = path.read_bytes()
    for sql in edits:
        path.write_bytes(backup)
        db = sqlite3.connect(path)
        db.executescript(sql)
        db.close()
        with Gallery(path) as g:
            for use in (g.people, lambda: g.embeddings("m"), lambda: g.rename("bob", "rob"), lambda: g.remove("bob")):
                with pytest.raises(GalleryError, match="integrity"):
                    use()
    path.write_bytes(backup)
    with Gallery(path) as g:  # the untouched file is fine, and a rename re-seals
        g.rename("bob", "rob")
        assert g.embeddings("m")[0] == ["ann", "rob"]


def _old_format(path):
    """Turn a gallery into what veil wrote before consent records were sealed."""
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE people DROP COLUMN seal")
    db.execute("UPDATE meta SET value = 'veil-gallery-1' WHERE key = 'format'")
    db.commit()
    db.close()


def test_old_galleries_are_refused_until_migrated(tmp_path):
    from typer.testing import CliRunner

    from veil.cli.main import app

    path = tmp_path / "g.sqlite"
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m", purpose="interview")
    _old_format(path)
    with pytest.raises(GalleryError, match="old format veil-gallery-1.*veil gallery migrate"):
        Gallery(path)
    r = CliRunner()
    res = r.invoke(app, ["gallery", "list", "--gallery", str(path)])
    assert res.exit_code == 3 and "veil gallery migrate" in res.output
    res = r.invoke(app, ["gallery", "migrate", "--gallery", str(path)])
    assert res.exit_code == 0, res.output
    assert "ann" in res.output and "interview" in res.output  # shown to the user to check
    with Gallery(path) as g:
        assert g.embeddings("m")[0] == ["ann"]


_ENROLL_ONE = """
import os, sys, time
import numpy as np
from veil.identify.gallery import Gallery
path, name, go = sys.argv[1:4]
while not os.path.exists(go):  # start together
    time.sleep(0.005)
try:
    with Gallery(path, create=True) as g:
        g.add(name, np.ones((1, 128), np.float32), "m")
    print("ok")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_concurrent_creation_of_a_new_gallery(tmp_path):
    """Issue #10 item 5: several 'gallery add' on a gallery that does not exist yet."""
    import subprocess
    import sys

    path = tmp_path / "new" / "g.sqlite"
    go = tmp_path / "go"
    names = ["a", "bb", "ccc", "dddd"]
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    procs = [subprocess.Popen([sys.executable, "-c", _ENROLL_ONE, str(path), n, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env, cwd=os.getcwd()) for n in names]
    go.touch()
    out = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert out == ["ok"] * len(names)
    with Gallery(path) as g:
        assert g.names() == names
    assert oct(path.with_suffix(".key").stat().st_mode & 0o777) == "0o600"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not list(path.parent.glob(".*.tmp"))


def test_creation_finds_the_other_creators_files(tmp_path, monkeypatch):
    """The interleavings of that race, made deterministic: the other process publishes the
    key file just after we looked for it, or has created the database file but not yet its
    tables."""
    from pathlib import Path

    from veil.identify.gallery import load_key

    path = tmp_path / "g.sqlite"
    key_path = path.with_suffix(".key")
    key = load_key(None, path, create=True)  # the other process's key
    is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda p: False if p == key_path else is_file(p))  # we looked too early
    assert load_key(None, path, create=True) == key  # lost the race: use the winner's key
    monkeypatch.undo()
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # 0 bytes: being created
    with Gallery(path, create=True) as g:
        g.add("ann", _vec(1)[None], "m")
    with Gallery(path, create=True) as g:
        assert g.names() == ["ann"]
    path.write_bytes(b"")
    with pytest.raises(GalleryError, match="empty"):
        Gallery(path)  # without create, an empty file is still an error


# -- voting, matcher, policies ----------------------------------------------------------------
def test_matcher_bands():
    m = Matcher(["a", "b"], np.stack([_vec(1), _vec(2)]), threshold=0.6, margin=0.1)
    a = _vec(1)
    near = a + 0.3 * _vec(9) / np.sqrt(2)  # ~0.3 away
    states = m.match(np.stack([a, near, _vec(5)]))
    assert states[0][:2] == (MATCH, "a") and states[1][:2] == (MATCH, "a")
    assert states[2][0] == UNKNOWN
    assert Matcher([], np.zeros((0, 0)), 0.6, 0.1).match(a[None])[0][0] == UNKNOWN


def test_verdict_rules():
    assert verdict([])[0] == PENDING
    assert verdict([_Vote(UNCERTAIN, "a", 0.65, 1)])[0] == UNCERTAIN
    assert verdict([_Vote(UNCERTAIN, "a", 0.65, 1), _Vote(MATCH, "a", 0.5, 0.5)])[:2] == (MATCH, "a")
    # the latest definite vote contradicts the majority: uncertain until settled
    votes = [_Vote(MATCH, "a", 0.4, 1), _Vote(MATCH, "a", 0.4, 1), _Vote(UNKNOWN, "a", 0.9, 1)]
    assert verdict(votes)[0] == UNCERTAIN
    assert verdict(votes + [_Vote(MATCH, "a", 0.4, 1)])[:2] == (MATCH, "a")
    assert verdict([_Vote(UNKNOWN, "a", 0.8, 1), _Vote(UNCERTAIN, "a", 0.65, 3)])[0] == UNCERTAIN


def _faces(states, names, tids=None):
    n = len(states)
    return Faces(xyxy=np.tile([0, 0, 50, 50], (n, 1)), scores=np.full(n, 0.9), identity=np.array(names, object),
                 track_id=tids, data={"id_state": np.array(states, object), "id_distance": np.full(n, 0.4, np.float32),
                                      "id_candidate": np.array(names, object)})


def test_policies_privacy_wins_in_doubt():
    f = _faces([MATCH, MATCH, UNKNOWN, UNCERTAIN, PENDING], ["ann", "bob", None, None, None])
    spare = AllMustKeep(AnonymizeAll(0.2), [SpareIdentities(["ann"])]).decide(f)
    assert list(spare.decision) == [KEEP, ANONYMIZE, ANONYMIZE, ANONYMIZE, ANONYMIZE]
    assert "ann (distance 0.40)" in spare.reason[0] and "unknown" in spare.reason[2]
    assert "uncertain" in spare.reason[3] and "not identified" in spare.reason[4]
    enrolled = SpareIdentities(None).decide(f)
    assert list(enrolled.decision[:2]) == [KEEP, KEEP]
    only = AllMustKeep(AnonymizeAll(0.2), [OnlyIdentities(["ann"])]).decide(f)
    assert list(only.decision) == [ANONYMIZE, KEEP, KEEP, ANONYMIZE, ANONYMIZE]
    # without the identify stage's columns nothing is spared
    bare = Faces(xyxy=[[0, 0, 9, 9]], scores=[0.9])
    assert SpareIdentities(["ann"]).decide(bare).decision[0] == ANONYMIZE
    assert OnlyIdentities(["ann"]).decide(bare).decision[0] == ANONYMIZE


def test_reports_name_only_the_people_left_visible():
    """Issue #10 item 6: a hidden face's report line must not say who it is."""
    f = _faces([MATCH, MATCH, UNCERTAIN], ["ann", "bob", None])
    f = f.with_columns(data={**f.data, "id_candidate": np.array(["ann", "bob", "bob"], object)})
    spare = AllMustKeep(AnonymizeAll(0.2), [SpareIdentities(["ann"])]).decide(f)
    only = AllMustKeep(AnonymizeAll(0.2), [OnlyIdentities(["ann"])]).decide(f)
    for decided in (spare, only):
        for rec in decided.records():
            if rec["anonymized"]:
                assert "identity" not in rec and "ann" not in rec["reason"] and "bob" not in rec["reason"], rec
    assert [r.get("identity") for r in spare.records()] == ["ann", None, None]
    assert [r.get("identity") for r in only.records()] == [None, "bob", None]
    # another rule anonymizing a face the identity rule would keep: the name goes too
    kept_by_id = AllMustKeep(AnonymizeAll(0.2), [SpareIdentities(["ann"]), OnlyIdentities(["bob"])]).decide(f)
    assert [r.get("identity") for r in kept_by_id.records()] == ["ann", None, None]  # bob: spare hides, only keeps
    asked = AllMustKeep(AnonymizeAll(0.2), [SpareIdentities(["ann"], name_hidden=True)]).decide(f)
    assert [r.get("identity") for r in asked.records()] == ["ann", "bob", None] and "bob" in asked.reason[1]


class _FakeEmbedder:
    name, dim, threshold = "fake", 128, 0.6

    def __init__(self, vec):
        self.vec, self.calls = vec, 0

    def embed_faces(self, rgb, faces):
        self.calls += len(faces)
        return np.tile(self.vec, (len(faces), 1))


def test_tracks_are_embedded_sparsely_and_rows_inherit():
    a = _vec(1)
    emb = _FakeEmbedder(a)
    stage = TrackIdentifier(emb, Matcher(["ann"], a[None], 0.6, 0.1), reverify_frames=30, min_gap=20)
    lm = np.array([[20, 20], [30, 20], [25, 27], [21, 33], [29, 33]], np.float32)
    frame = np.zeros((100, 100, 3), np.uint8)
    for k in range(90):
        detected = k % 3 != 1
        f = Faces(xyxy=[[10, 10, 50, 50]], scores=[0.9], landmarks=(lm if detected else np.full((5, 2), np.nan))[None],
                  track_id=[7], data={"source": np.array(["detected" if detected else "coasted"], object)})
        out = stage.annotate(frame, f)
        assert out.identity[0] == "ann" and out.data["id_state"][0] == MATCH
    assert emb.calls == 3  # first view, then every 30 frames
    assert stage.stats["embeddings_per_face_frame"] <= 1 / 20
    # a jump (the tracker switched faces): the track is re-identified, pending until then
    f = Faces(xyxy=[[60, 60, 99, 99]], scores=[0.2], track_id=[7])
    assert stage.annotate(frame, f).data["id_state"][0] == PENDING
    stage.reset()
    assert stage._tracks == {}


def test_a_face_cut_by_the_frame_edge_is_not_identified_until_in_full_view():
    """Issue #12: a person entering the picture was embedded half outside it (distance 0.66,
    uncertain) and stayed anonymized; now the first vote waits for a full view."""
    a = _vec(1)
    emb = _FakeEmbedder(a)
    stage = TrackIdentifier(emb, Matcher(["ann"], a[None], 0.6, 0.1), reverify_frames=30, min_gap=1)
    frame = np.zeros((120, 200, 3), np.uint8)
    lm0 = np.array([[20, 20], [40, 20], [30, 32], [22, 42], [38, 42]], np.float32)
    states = []
    for x in (-30, -25, -21, -20, -10):  # sliding in from the left edge; the detector clips the box to the frame
        box = np.array([max(x, 0), 10, x + 60, 70], np.float32)
        f = Faces(xyxy=box[None], scores=[0.9], landmarks=(lm0 + [x, 0])[None], track_id=[3],
                  data={"source": np.array(["detected"], object)})
        states.append(stage.annotate(frame, f).data["id_state"][0])
    assert states == [PENDING, PENDING, PENDING, MATCH, MATCH], states  # until every landmark is in the picture
    assert emb.calls == 1


def test_config_modes():
    with pytest.raises(ConfigError, match="cannot be combined"):
        Config().updated(identify={"spare": ["a"], "only": ["b"]})
    assert not Config().identify.active
    assert Config().updated(identify={"spare_enrolled": True}).identify.active


# -- real photos: enrolment, images, CLI --------------------------------------------------------
pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def photos(data_dir):
    return require(data_dir / "reid" / "face_recognition" / "examples_top", "reid/face_recognition")


def test_enrolment_checks_and_selective_image(photos, tmp_path):
    import cv2
    from PIL import Image

    import veil

    g_path = tmp_path / "g.sqlite"
    anon = veil.Anonymizer(gallery=g_path)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (128, 128, 128)).save(blank)
    rgb = np.asarray(Image.open(photos / "obama.jpg").convert("RGB"))
    blurry = tmp_path / "blurry.png"
    Image.fromarray(cv2.GaussianBlur(rgb, (0, 0), 8)).save(blurry)
    with anon.gallery(create=True) as g:
        with pytest.raises(GalleryError, match="no face"):
            g.enroll("x", [blank])
        with pytest.raises(GalleryError, match="2 faces"):
            g.enroll("x", [photos / "two_people.jpg"])
        with pytest.raises(GalleryError, match="blurry"):
            g.enroll("x", [blurry])
        with pytest.raises(GalleryError, match="same person"):
            g.enroll("x", [photos / "obama.jpg", photos / "biden.jpg"])
        person, warnings = g.enroll("obama", [photos / "obama.jpg", photos / "obama2.jpg"], purpose="test")
        assert person.n_embeddings == 2 and not warnings
        with pytest.raises(GalleryError, match="share a name"):
            g.enroll("obama", [photos / "biden.jpg"], append=True)
        _, warnings = g.enroll("barack", [photos / "obama-720p.jpg"])
        assert "two names" in warnings[0]
        g.remove("barack")
        g.enroll("biden", [photos / "biden.jpg"])
    with pytest.raises(GalleryError, match="nobody is enrolled under that name"):
        veil.Anonymizer(gallery=g_path, spare=["nobody"])
    out, report = tmp_path / "out.jpg", tmp_path / "report.json"
    spare = veil.Anonymizer(gallery=g_path, spare=["obama"], report_path=report)
    item = spare.image(photos / "two_people.jpg", out)
    spare.write_report()
    faces = [f for fr in json.loads(report.read_text())["items"][0]["frames"] for f in fr["faces"]]
    kept = [f["identity"] for f in faces if not f["anonymized"]]
    assert kept == ["obama"], [f["reason"] for f in faces]
    assert item.extra["identify"]["embeddings"] == 2
    assert "embedding" not in report.read_text().replace("embeddings", "")  # counts only, never vectors
    only = veil.Anonymizer(gallery=g_path, only=["obama"], report_path=report)
    only.image(photos / "two_people.jpg", tmp_path / "o.jpg")
    only.write_report()
    faces = [f for fr in json.loads(report.read_text())["items"][0]["frames"] for f in fr["faces"]]
    assert [f["anonymized"] for f in faces] == [True, False]  # obama hidden, biden (not listed) visible
    assert [f.get("identity") for f in faces] == [None, "biden"]  # reports name only visible people


def test_cli_gallery_roundtrip(photos, tmp_path):
    from typer.testing import CliRunner

    from veil.cli.main import app

    r = CliRunner()
    g = ["--gallery", str(tmp_path / "g.sqlite")]
    res = r.invoke(app, ["gallery", "add", "obama", str(photos / "obama.jpg"), "--purpose", "demo",
                         "--expires", "2999-12-31", *g])
    assert res.exit_code == 0, res.output
    assert "created gallery key" in res.output
    res = r.invoke(app, ["gallery", "add", "two", str(photos / "two_people.jpg"), *g])
    assert res.exit_code == 3 and "2 faces found" in res.output
    res = r.invoke(app, ["gallery", "list", *g])
    assert "obama" in res.output and "purpose=demo" in res.output and "2999-12-31" in res.output
    assert r.invoke(app, ["gallery", "rename", "obama", "barack", *g]).exit_code == 0
    res = r.invoke(app, ["anonymize", str(photos / "obama.jpg"), "-o", str(tmp_path / "o.jpg"), "--spare", "obama", *g, "-q"])
    assert res.exit_code == 3 and "nobody is enrolled under that name" in res.output
    res = r.invoke(app, ["anonymize", str(photos / "obama.jpg"), "-o", str(tmp_path / "o.jpg"), "--spare", "barack",
                         "--only", "barack", *g, "-q"])
    assert res.exit_code == 2 and "cannot be combined" in res.output
    res = r.invoke(app, ["anonymize", str(photos / "obama.jpg"), "-o", str(tmp_path / "o.jpg"), "--spare", "barack",
                         *g, "--report", str(tmp_path / "r.json"), "-q"])
    assert res.exit_code == 0, res.output
    assert '"identity": "barack"' in (tmp_path / "r.json").read_text()
    assert r.invoke(app, ["gallery", "remove", "barack", *g]).exit_code == 0
    assert "nobody is enrolled" in r.invoke(app, ["gallery", "list", *g]).output
    (tmp_path / "g.key").write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    (tmp_path / "g.key").chmod(0o600)
    res = r.invoke(app, ["gallery", "list", *g])
    assert res.exit_code == 3 and "wrong key" in res.output


def test_enrolment_says_when_a_face_is_turned():
    from veil.identify.enroll import face_problem

    frontal = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)
    turned = frontal.copy()
    turned[2, 0] = 85  # the nose far to one side of the eyes' midpoint
    f = Faces(xyxy=[[20, 20, 100, 120], [20, 20, 100, 120]], scores=[0.9, 0.9], landmarks=np.stack([frontal, turned]))
    rgb = np.zeros((150, 150, 3), np.uint8)
    assert face_problem(rgb, f, 0, _FakeEmbedder(_vec(1)))[0] is None
    assert "turned away" in face_problem(rgb, f, 1, _FakeEmbedder(_vec(1)))[0]
    small = Faces(xyxy=[[0, 0, 30, 30]], scores=[0.9], landmarks=frontal[None] / 4)
    assert "too small" in face_problem(rgb, small, 0, _FakeEmbedder(_vec(1)))[0]


def test_enrol_from_a_video_and_test_before_a_run(data_dir, tmp_path):
    """Issue #12: 'veil gallery add NAME clip.mp4' keeps several sharp, frontal, varied views;
    'veil gallery test NAME media' shows the distances veil would see."""
    from typer.testing import CliRunner

    from veil.cli.main import app
    from veil.detect import build_detector
    from veil.eval.identity import ClipSpec, identity_photos, photo_boxes, render_clip

    reid = data_dir / "reid"
    require(reid / "face_recognition" / "identities.csv", "reid/face_recognition")
    alex = identity_photos(reid)["alex_lacamoire"]
    cfg = Config()
    boxes = photo_boxes(alex, build_detector(cfg.detect, batch=1))
    clip = tmp_path / "alex.mp4"
    render_clip(ClipSpec("alex", (), alex[0], ()), boxes, clip, frames=24, size=(480, 360), fps=8)
    g = ["--gallery", str(tmp_path / "g.sqlite")]
    r = CliRunner()
    res = r.invoke(app, ["gallery", "add", "alex", str(clip), *g])
    assert res.exit_code == 0, res.output
    assert "view(s)" in res.output
    with Gallery(tmp_path / "g.sqlite") as gal:
        n = gal.people()[0].n_embeddings
    assert 2 <= n <= 5
    res = r.invoke(app, ["gallery", "test", "alex", str(alex[1]), *g])
    assert res.exit_code == 0, res.output
    assert "kept by --spare alex" in res.output and "embedding" not in res.output.lower()
    res = r.invoke(app, ["gallery", "test", "alex", str(data_dir / "reid" / "face_recognition" / "examples_top" / "biden.jpg"), *g])
    assert res.exit_code == 0 and "someone else" in res.output and "kept" not in res.output.split("face(s):")[1]
