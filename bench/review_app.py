"""The review app's responsiveness on a 1080p clip: time to the first exact frame and time to
step one frame, in Debian's Chromium (headless) against a real ``veil serve`` on 127.0.0.1.

The clip is uploaded and analysed first (not timed). Then a fresh page opens the job:
"first frame" is the time from navigation start to the exact frame 0 shown. "Step" is the
time from the request of the next frame's exact image to its display, for +1 frame (the
server decodes one frame forward), -1 frame (a seek back to the keyframe and a decode
forward) and +1 s. Target: <= 150 ms per step.

    python bench/review_app.py --clip video/pedestrians_1080p.mp4 --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serve_helpers import get_json, launch_chromium, veil_server  # noqa: E402


def upload(url: str, path: Path) -> str:
    req = urllib.request.Request(f"{url}/api/jobs?name={path.name}", data=path.read_bytes(), method="POST",
                                 headers={"X-Veil-CSRF": "1", "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["id"]


def stats(ms: list[float]) -> str:
    ms = sorted(ms)
    return f"median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms (n={len(ms)})"


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="video/pedestrians_1080p.mp4")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    src = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")) / args.clip
    with tempfile.TemporaryDirectory() as tmp, veil_server(Path(tmp) / "data") as url, sync_playwright() as p:
        job = upload(url, src)
        while get_json(f"{url}/api/jobs/{job}")["status"] not in ("review", "failed"):
            time.sleep(1)
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{url}/#job={job}")
        page.wait_for_function("window.veilTiming.first !== undefined", timeout=120_000)
        first = page.evaluate("window.veilTiming.first")
        page.click("#timecode")
        runs = {}
        for name, key, sign in (("+1 frame", "ArrowRight", 1), ("-1 frame", "ArrowLeft", -1), ("+1 s", "Shift+ArrowRight", 0)):
            before = page.evaluate("window.veilTiming.frames.length")
            n = args.steps if sign else 3
            for _ in range(n):
                want = page.evaluate("S.index") + sign if sign else None
                page.keyboard.press(key)
                if want is not None:
                    page.wait_for_function(f"document.querySelector('#frame').dataset.index === '{want}'")
                else:
                    page.wait_for_function("document.querySelector('#frame').dataset.index === String(S.index)")
            runs[name] = page.evaluate(f"window.veilTiming.frames.slice({before})")
        w, h = page.evaluate("[S.plan.input.width, S.plan.input.height]")
        browser.close()
    print(f"{args.clip} ({w}x{h}): time to first frame {first:.0f} ms (navigation start -> exact frame 0 shown)")
    for name, ms in runs.items():
        print(f"step {name}: {stats(ms)}")


if __name__ == "__main__":
    main()
