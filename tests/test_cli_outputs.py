"""Failing closed around outputs, on real photos and a real (rendered) clip: outputs that
appear during a run, output folders that cannot be made, unreadable inputs, the report path,
file names that hold control characters, symbolic links to folders, and memory that must
not grow with the number of frames."""

import gc
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import veil
from helpers import run
from veil.cli.safe_text import PrintableFormatter, printable
from veil.errors import OutputError
from veil.io.atomic import atomic_output
from veil.io.paths import walk_media
from veil.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def photo(tmp_path, astronaut):
    src = tmp_path / "in" / "astronaut.png"
    src.parent.mkdir()
    Image.fromarray(astronaut).save(src)
    return src


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut):
    """A 24-frame H.264 clip of the astronaut photo drifting sideways (a face in every frame)."""
    path = tmp_path_factory.mktemp("clip") / "drift.mp4"
    small = np.ascontiguousarray(astronaut[::2, ::2])  # 256 x 256
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 320, 256, "yuv420p"
        for i in range(24):
            frame = np.zeros((256, 320, 3), np.uint8)
            frame[:, 2 * i:2 * i + 256] = small
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


# --------------------------------------------------------------------------- two runs, one output


def appear_during_run(monkeypatch, target: Path, method: str, content: bytes = b"the other run's output"):
    """Another run finishes ``target`` while this one is working (between the start-up check
    and the final rename): deterministic, no sleeps."""
    original = getattr(Pipeline, method)

    def other_run_finishes(self, *args, **kwargs):
        if not target.exists():
            target.write_bytes(content)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, method, other_run_finishes)


def test_image_output_that_appears_during_the_run_is_not_replaced(photo, tmp_path, monkeypatch):
    out = tmp_path / "same.png"
    appear_during_run(monkeypatch, out, "process")
    res = run("anonymize", photo, "-o", out, "-q")
    assert res.exit_code == 4, res.output
    assert "appeared while this run was working" in res.output and "Traceback" not in res.output
    assert out.read_bytes() == b"the other run's output"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_an_output_that_appeared(photo, tmp_path, monkeypatch):
    out = tmp_path / "same.png"
    appear_during_run(monkeypatch, out, "process")
    res = run("anonymize", photo, "-o", out, "-q", "--overwrite")
    assert res.exit_code == 0, res.output
    assert Image.open(out).size == (512, 512)


def test_video_output_that_appears_during_the_run_is_not_replaced(clip, tmp_path, monkeypatch):
    out, report = tmp_path / "same.mp4", tmp_path / "r.json"
    appear_during_run(monkeypatch, out, "run")
    res = run("anonymize", clip, "-o", out, "-q", "--report", report)
    assert res.exit_code == 4, res.output
    assert out.read_bytes() == b"the other run's output"
    item = json.loads(report.read_text())["items"][0]
    assert item["status"] == "error" and "output_sha256" not in item and item["frames"] == []
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("hard_links", [True, False])
def test_atomic_output_claims_the_name(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # FAT, some network mounts: an exclusively created placeholder instead
        monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(PermissionError(1, "not permitted")))
    dst = tmp_path / "out.txt"
    with atomic_output(dst, replace=False) as tmp:
        tmp.write_text("mine")
    assert dst.read_text() == "mine" and leftovers(tmp_path) == []
    dst.unlink()
    with pytest.raises(OutputError, match="appeared while this run was working"):
        with atomic_output(dst, replace=False) as tmp:
            tmp.write_text("mine")
            dst.write_text("theirs")
    assert dst.read_text() == "theirs" and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- folders and paths


def test_output_folder_that_cannot_be_made_is_one_line_exit_4(photo, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    res = run("anonymize", photo.parent, "-o", blocker / "out", "-q")
    assert res.exit_code == 4, res.output
    assert "cannot create the output folder" in res.output and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    res = run("anonymize", photo, photo.parent, "-o", blocker / "out", "-q")  # several inputs: -o is a folder
    assert res.exit_code == 4 and "cannot create the output folder" in res.output, res.output


def test_output_sub_folder_that_cannot_be_made_fails_only_its_files(photo, tmp_path, grace_hopper):
    (photo.parent / "sub").mkdir()
    Image.fromarray(grace_hopper).save(photo.parent / "sub" / "hopper.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the sub-folder would go")
    res = run("anonymize", photo.parent, "-o", out, "-q")
    assert res.exit_code == 3, res.output
    assert "cannot create the output folder" in res.output and "Traceback" not in res.output
    assert (out / "astronaut.png").is_file()


def test_report_path_is_checked_before_any_work(photo, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the report path was checked")

    monkeypatch.setattr(Pipeline, "process", no_work)
    out = tmp_path / "out.png"
    res = run("anonymize", photo, "-o", out, "--report", tmp_path / "missing" / "r.json", "-q")
    assert res.exit_code == 4, res.output
    assert "report folder does not exist" in res.output and not out.exists()
    res = run("anonymize", photo, "-o", out, "--report", tmp_path, "-q")  # a folder
    assert res.exit_code == 4 and "is a folder" in res.output, res.output
    res = run("anonymize", photo, "-o", out, "--report", photo, "-q")  # would replace the input
    assert res.exit_code == 4 and "report would overwrite" in res.output, res.output
    assert Image.open(photo).size == (512, 512)


def test_symlinked_folder_is_reported_not_skipped_silently(photo, tmp_path, grace_hopper, caplog):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.fromarray(grace_hopper).save(elsewhere / "hopper.jpg")
    (photo.parent / "linked").symlink_to(elsewhere, target_is_directory=True)
    (photo.parent / "loop").symlink_to(photo.parent, target_is_directory=True)
    skipped = []
    assert list(walk_media(photo.parent, on_skip=lambda p, why: skipped.append((p.name, why)))) == [photo]
    assert sorted(name for name, _ in skipped) == ["linked", "loop"]
    assert all("symbolic link to a folder, not followed" in why for _, why in skipped)
    with caplog.at_level(logging.WARNING, logger="veil"):
        res = run("anonymize", photo.parent, "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0, res.output
    assert sum("not followed" in r.getMessage() for r in caplog.records) == 2


def test_image_over_the_memory_limit_is_one_line_before_decoding(photo, tmp_path):
    # 512 x 512: 3 bytes a pixel kept, 3 for the anonymized copy, 12 to write a JPEG = 4.5 MB
    res = run("anonymize", photo, "-o", tmp_path / "o.jpg", "--max-image-mb", "4", "-q")
    assert res.exit_code == 3, res.output
    assert res.output.count("\n") == 1 and "needs about 4.5 MB of memory, over the limit of 4.0 MB" in res.output
    assert run("anonymize", photo, "-o", tmp_path / "o.png", "--max-image-mb", "4", "-q").exit_code == 0  # 2.8 MB


# --------------------------------------------------------------------------- file names


UNSAFE = "evil\n0 failed\x1b[2J\u202egpj"


def test_printable_escapes_control_and_direction_characters():
    assert printable(UNSAFE) == "evil\\n0 failed\\x1b[2J\\u202egpj"
    assert printable("caf\udce9.png") == "caf\\xe9.png"  # an undecodable byte, kept by os.fsdecode
    assert printable("plain name – ok.jpg") == "plain name – ok.jpg"
    record = logging.LogRecord("veil", logging.WARNING, __file__, 1, "%s: skipped", (UNSAFE,), None)
    assert "\n" not in PrintableFormatter("veil: %(message)s").format(record)


def test_file_names_are_printed_escaped(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    good, bad = folder / f"{UNSAFE}.png", folder / f"{UNSAFE}.jpg"
    Image.fromarray(astronaut).save(good)
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    res = run("anonymize", folder, "-o", tmp_path / "out")
    assert res.exit_code == 3
    assert "\x1b[2J" not in res.output and "\u202e" not in res.output and "\n0 failed" not in res.output
    assert "evil\\n0 failed\\x1b[2J\\u202egpj.jpg" in res.output
    res = run("anonymize", good, "-o", tmp_path / f"{UNSAFE}-out.png")
    assert res.exit_code == 0, res.output
    assert "-> " in res.output and "\x1b[2J" not in res.output and "\\x1b[2J" in res.output


# --------------------------------------------------------------------------- unreadable input


def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root ignores them)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set", caps, "--inh-caps", caps]


def veil_cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = unprivileged() + [sys.executable, "-m", "veil", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_unreadable_input_and_read_only_output_are_one_line_errors(photo, clip, tmp_path):
    for src in (photo, clip):
        locked = tmp_path / f"locked{src.suffix}"
        shutil.copy(src, locked)
        locked.chmod(0)
        res = veil_cli("anonymize", locked, "-o", tmp_path / f"o{src.suffix}", "-q")
        assert res.returncode == 3, res.stderr
        assert "permission denied" in res.stderr and "Usage" not in res.stderr and "Traceback" not in res.stderr
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    res = veil_cli("anonymize", photo.parent, "-o", read_only / "out", "-q")
    assert res.returncode == 4, res.stderr
    assert "cannot create the output folder" in res.stderr and "Traceback" not in res.stderr
    res = veil_cli("anonymize", photo, "-o", read_only / "o.png", "-q")
    assert res.returncode == 4 and "Traceback" not in res.stderr, res.stderr
    locked_folder = photo.parent / "locked"
    locked_folder.mkdir()
    shutil.copy(photo, locked_folder / "inside.png")
    locked_folder.chmod(0)
    res = veil_cli("anonymize", photo.parent, "-o", tmp_path / "out")
    assert res.returncode == 3, res.stderr  # a folder that cannot be read fails the run, and says so
    assert "locked: cannot read the folder" in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "out" / "astronaut.png").is_file()


# --------------------------------------------------------------------------- memory


def face_records_alive() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, dict) and "box" in o and "anonymized" in o)


def test_per_frame_records_are_not_kept_in_memory(clip, tmp_path):
    anon = veil.Anonymizer()
    item = anon.video(clip, tmp_path / "a.mp4")
    assert item.counts["frames"] == 24 and item.counts["anonymized"] >= 24
    assert face_records_alive() == 0  # counters only, without a report
    report = tmp_path / "r.json"
    anon = veil.Anonymizer(report_path=report)
    item = anon.video(clip, tmp_path / "b.mp4")
    assert face_records_alive() == 0  # with one, the records went to disk
    anon.write_report()
    rep = json.loads(report.read_text())
    frames = rep["items"][0]["frames"]
    assert [f["index"] for f in frames] == list(range(24)) and rep["manifest"]["per_frame"] is True
    assert sum(f["anonymized"] for fr in frames for f in fr["faces"]) == item.counts["anonymized"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no spool file left
