"""Helpers the tests share: the CLI in-process, ffmpeg, local ports, and boxes on frames.

One definition each (they used to be copied into the test files, with small differences).
Data fixtures (``data_dir``, ``hamilton``, ...) are in ``conftest.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args, **kwargs):
    """``veil ARGS...`` in this process (Typer's runner); arguments may be paths or numbers."""
    from veil.cli.main import app

    return runner.invoke(app, [str(a) for a in args], **kwargs)


def veil_cmd(*args) -> list[str]:
    """The command line of ``veil ARGS...`` as a child process (this interpreter)."""
    return [sys.executable, "-m", "veil", *map(str, args)]


def ffmpeg() -> str:
    """The ffmpeg binary of imageio-ffmpeg (a test dependency; there may be none on PATH)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that was free a moment ago (TCP, or UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:port, without connecting (ffmpeg's
    ``-listen 1`` would take a probe connection as its one client)."""
    deadline = time.monotonic() + timeout
    if not Path("/proc/net/tcp").exists():
        time.sleep(1.0)
        return
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                    return
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            err = err.decode() if isinstance(err, bytes) else err
            raise RuntimeError(f"process exited with {proc.returncode} before listening: {err[-500:]}")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def box_slices(box, hw: tuple[int, ...]) -> tuple[slice, slice]:
    """Row and column slices of a box (x1, y1, x2, y2), rounded and clipped to a frame of
    size ``hw``: a box reaching past the left or top edge keeps its part inside the frame
    (a negative start would otherwise select nothing, or the wrong end of the array)."""
    h, w = hw[:2]
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    return slice(max(0, y1), min(h, max(0, y2))), slice(max(0, x1), min(w, max(0, x2)))
