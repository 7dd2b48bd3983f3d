"""Start ``veil serve`` as a real process on 127.0.0.1 (browser tests, benchmarks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update"]


@contextmanager
def veil_server(data_dir: Path, *args: str):
    """The server's base URL; the process (started here, stopped here by its pid) ends after.
    ``args`` go to ``veil serve``."""
    port = free_port()
    env = {**os.environ, "VEIL_HOME": str(data_dir)}
    env.pop("VEIL_SERVE_TOKEN", None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "veil", "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
                    if json.load(r)["ok"]:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("veil serve did not start: " + (data_dir / "server.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def get_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def launch_chromium(playwright):
    """Debian's Chromium, a fresh profile, no network beyond the test server."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
