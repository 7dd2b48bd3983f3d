"""The ``veil`` CLI stopped by signals, as services, containers, ``timeout`` and users stop it:
SIGTERM is handled like Ctrl-C (files: nothing partial is left; live recordings: finalized),
a second signal aborts a live run and says truthfully what was kept, and a run killed with
SIGKILL has its temporary file removed by the next run.

Real processes (``python -m veil``) with the real detector on a real clip; signals go to the
child's pid only. Each test starts the child from explicit signal dispositions
(``default_signals``), and waits for readiness by reading its output or watching for its
temporary file, with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from helpers import ffmpeg

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("default_signals")


def veil(procs, *args, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "veil", *map(str, args)], stdin=stdin, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    procs.append(p)
    return p


def live_feed(procs, clip: Path) -> subprocess.Popen:
    """``clip`` looped forever in real time as MPEG-TS on stdout, like a camera: the run
    cannot end by itself before the test stops it."""
    p = subprocess.Popen([ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                          "-an", "-c:v", "copy", "-f", "mpegts", "-"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    procs.append(p)
    return p


class Stderr:
    """A child's stderr read by a thread, so that the test can wait for a line with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.seen: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(proc.stderr,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))  # queue.Empty: too late
            assert line is not None, f"ended before {text!r}: {''.join(self.seen)}"
            self.seen.append(line)

    def all(self) -> str:
        """Everything, once the child has exited."""
        while (line := self._lines.get(timeout=30)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def wait_for_part(folder: Path, proc: subprocess.Popen, timeout: float = 180) -> Path:
    """The writer's temporary file, once it exists (the run is writing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = list(folder.glob(".*.part*"))
        if parts:
            return parts[0]
        assert proc.poll() is None, f"veil exited with {proc.returncode} before writing: {proc.stderr.read()}"
        time.sleep(0.05)
    raise AssertionError(f"no temporary file in {folder} after {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_on_a_file_leaves_nothing(hamilton, tmp_path, procs, signum):
    """`veil anonymize` stopped by SIGTERM (or SIGHUP: the terminal closed) mid-video: exit
    status 143 (129), no output, no .part file (both used to kill it and leave the hidden
    temporary file)."""
    run = veil(procs, "anonymize", hamilton, "-o", tmp_path / "o.mp4", "-q")
    wait_for_part(tmp_path, run)
    run.send_signal(signum)
    assert run.wait(timeout=60) == 128 + signum
    name = signal.Signals(signum).name
    assert run.stderr.read().strip().splitlines()[-1] == f"veil: interrupted ({name}); no partial output was written"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_finalizes_a_live_recording(hamilton, tmp_path, procs):
    """`feed | timeout 12 veil stream - -o rec.mp4`: SIGTERM stops the run like Ctrl-C, the
    recording is finalized and plays, the exit status is 143."""
    rec = tmp_path / "rec.mp4"
    run = veil(procs, "stream", "-", "-o", rec, stdin=live_feed(procs, hamilton).stdout)
    err = Stderr(run)
    err.wait_for("1 frame anonymized")  # at least one frame is in the recording
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 143
    said = err.all()
    assert "veil: SIGTERM: stopping after the frames in flight (SIGTERM again to abort)" in said
    summary = re.search(r"^(\d+) frames anonymized, .*ended: stop$", said, re.M)
    assert summary, said
    assert count_frames(rec) == int(summary[1]) >= 1
    assert sorted(tmp_path.iterdir()) == [rec, rec.with_name(rec.name + ".veil.json")]  # finalized: signed too


def test_a_second_signal_aborts_and_says_what_was_kept(hamilton, tmp_path, procs):
    """Ctrl-C then SIGTERM: the first asks to finish, the second aborts; the one line that
    follows says how many frames were kept where, and it is true (it used to say that no
    partial output was written, after a warning that frames were kept). The child is
    stopped while both signals are sent, so that they arrive together whatever the load."""
    rec = tmp_path / "rec.mp4"
    run = veil(procs, "stream", "-", "-o", rec, stdin=live_feed(procs, hamilton).stdout)
    err = Stderr(run)
    err.wait_for("1 frame anonymized")
    for signum in (signal.SIGSTOP, signal.SIGINT, signal.SIGTERM, signal.SIGCONT):
        run.send_signal(signum)
    assert run.wait(timeout=120) == 143
    said = err.all()
    assert "veil: Ctrl-C: stopping after the frames in flight (Ctrl-C again to abort)" in said
    last = said.strip().splitlines()[-1]
    kept = re.fullmatch(r"veil: interrupted \(SIGTERM\); the (\d+) frame\(s\) anonymized before it were kept in (.+)", last)
    assert kept and kept[2] == str(rec), said
    assert count_frames(rec) == int(kept[1]) >= 1
    assert "no partial output" not in said and "ended:" not in said
    assert sorted(tmp_path.iterdir()) == [rec]


def test_the_part_of_a_killed_run_is_removed_by_the_next_run(hamilton, tmp_path, procs):
    """kill -9 leaves the temporary file; the next run writing there removes it and says so."""
    out = tmp_path / "o.mp4"
    killed = veil(procs, "anonymize", hamilton, "-o", out, "-q")
    part = wait_for_part(tmp_path, killed)
    killed.kill()
    killed.wait(timeout=60)
    assert part.exists() and f".veil-{killed.pid}-" in part.name
    again = subprocess.run([sys.executable, "-m", "veil", "anonymize", hamilton, "-o", out, "--end", "1.5", "-q"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"veil: removed {part}, left by a veil run that was killed (process {killed.pid} is gone)" in again.stderr
    assert sorted(tmp_path.iterdir()) == [out, out.with_name(out.name + ".veil.json")] and count_frames(out) >= 10
