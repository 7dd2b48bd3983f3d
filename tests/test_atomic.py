"""veil.io.atomic: temporary files that a killed run (SIGKILL) leaves behind are removed by
the next run that writes into the folder, and nothing else is: not a live writer's file (in
this process, another one, or one whose pid means nothing here), not a file that is not veil's.

Writers are real child processes, killed with a real SIGKILL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veil.io.atomic import atomic_output, remove_stale_parts

fcntl = pytest.importorskip("fcntl")  # no locks, no cleanup (Windows)

ROOT = Path(__file__).resolve().parents[1]

WRITER = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from veil.io.atomic import atomic_output
with atomic_output(Path(sys.argv[2])) as tmp:
    tmp.write_bytes(b"half")
    print(tmp, flush=True)
    sys.stdin.read()  # writing, until the test closes stdin (or kills this process)
"""

LOCKER = r"""
import fcntl, sys
fd = open(sys.argv[1], "rb")
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def start(script: str, *args) -> subprocess.Popen:
    """A child running ``script``; returns once it printed its first line (it is ready)."""
    p = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    p.first_line = p.stdout.readline().strip()
    assert p.first_line, f"child exited with {p.wait()}"
    return p


def finish(p: subprocess.Popen) -> int:
    p.stdin.close()
    return p.wait(timeout=30)


def dead_pid() -> int:
    """A pid no process can have (above the kernel's limit)."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except OSError:
        return 4_194_305  # Linux's largest pid_max + 1


def test_the_temporary_file_names_its_writer_and_is_locked(tmp_path):
    dst = tmp_path / "out.mp4"
    with atomic_output(dst) as tmp:
        assert tmp.name.startswith(f".out.veil-{os.getpid()}-") and tmp.name.endswith(".part.mp4")
        with open(tmp, "rb") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        tmp.write_bytes(b"done")
    assert dst.read_bytes() == b"done" and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_a_part_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path, caplog):
    dst = tmp_path / "rec.mp4"
    writer = start(WRITER, ROOT, dst)
    part = Path(writer.first_line)
    writer.kill()  # kill -9: no cleanup runs
    writer.wait(timeout=30)
    assert part.exists() and not dst.exists()
    with caplog.at_level(logging.WARNING, logger="veil"), atomic_output(dst) as tmp:
        tmp.write_bytes(b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["rec.mp4"] and dst.read_bytes() == b"new"
    said = [r.getMessage() for r in caplog.records]
    assert any(part.name in m and f"process {writer.pid} is gone" in m for m in said), said


def test_a_live_writers_part_is_kept(tmp_path):
    writer = start(WRITER, ROOT, tmp_path / "a.mp4")
    part = Path(writer.first_line)
    try:
        with atomic_output(tmp_path / "b.mp4") as tmp:  # the first write into the folder: it looks
            tmp.write_bytes(b"b")
        assert remove_stale_parts(tmp_path) == [] and part.exists()
    finally:
        assert finish(writer) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_only_abandoned_veil_parts_are_removed(tmp_path, monkeypatch):
    dead = dead_pid()
    part = f"veil-{dead}-0123abcd.part"
    removable = [tmp_path / f".a.{part}.mp4", tmp_path / f".b.{part}"]
    kept = [
        tmp_path / ".c.0123abcd.part.mp4",  # no marker and pid (older veil, or not veil's)
        tmp_path / f"c.{part}.mp4",  # not hidden
        tmp_path / f".d.veil-{dead}-0123ABCD.part.mp4",  # not veil's spelling
        tmp_path / f".e.veil-{os.getpid()}-0123abcd.part.mp4",  # this process: alive
        tmp_path / f".h.{part}.mp4",  # locked: a live writer whose pid means nothing here
    ]
    for path in removable + kept:
        path.write_bytes(b"x")
    target = tmp_path / "elsewhere.mp4"
    target.write_bytes(b"not veil's")
    (tmp_path / f".f.{part}.mp4").symlink_to(target)
    (tmp_path / f".g.{part}.mp4").mkdir()
    kept += [tmp_path / f".f.{part}.mp4", tmp_path / f".g.{part}.mp4", target]
    locker = start(LOCKER, tmp_path / f".h.{part}.mp4")
    try:
        assert sorted(remove_stale_parts(tmp_path)) == sorted(removable)
    finally:
        finish(locker)
    assert sorted(tmp_path.iterdir()) == sorted(kept) and target.read_bytes() == b"not veil's"

    other_users = tmp_path / f".i.{part}.mp4"
    other_users.write_bytes(b"x")
    monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)  # as if another user's file
    assert remove_stale_parts(tmp_path) == [] and other_users.exists()
    monkeypatch.undo()
    # and once its holder is gone, the file that was locked is abandoned too
    assert sorted(remove_stale_parts(tmp_path)) == sorted([other_users, tmp_path / f".h.{part}.mp4"])


def test_a_folder_is_looked_at_once_per_process(tmp_path):
    """Each write does not rescan its folder (a folder run writes thousands of files there)."""
    with atomic_output(tmp_path / "a.png") as tmp:
        tmp.write_bytes(b"a")
    stale = tmp_path / f".b.veil-{dead_pid()}-0123abcd.part.png"
    stale.write_bytes(b"x")
    with atomic_output(tmp_path / "c.png") as tmp:
        tmp.write_bytes(b"c")
    assert stale.exists()
    assert remove_stale_parts(tmp_path) == [stale]
