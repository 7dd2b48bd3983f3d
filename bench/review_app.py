"""The review app's responsiveness on a 1080p clip: time to the first exact frame and time to
step one frame, in Debian's Chromium (headless) against a real ``veil serve`` on 127.0.0.1.

The clip is uploaded and analysed first (not timed). Then a fresh page opens the job:
"first frame" is the time from navigation start to the exact frame 0 shown. "Step" is the
time from the request of the next frame's exact image to its display, for +1 frame (the
server decodes one frame forward), -1 frame (a seek back to the keyframe and a decode
forward) and +1 s. Target: <= 150 ms per step. The server's read-ahead (``veil serve
--prefetch``) is compared on the same job, settings alternating (the clip is analysed once).

    python bench/review_app.py --clip video/pedestrians_1080p.mp4 --steps 30 --prefetch 0 4 --rounds 2
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


def measure(p, url: str, job: str, steps: int, settle: bool) -> tuple[float, dict[str, list[float]], tuple[int, int]]:
    """One fresh browser page on the job: time to first frame, and the step times."""
    browser = launch_chromium(p)
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{url}/#job={job}")
        page.wait_for_function("window.veilTiming.first !== undefined", timeout=120_000)
        first = page.evaluate("window.veilTiming.first")
        if settle:  # the visible thumbnails (a decode + crop per track) load after the first frame
            page.wait_for_function("[...document.querySelectorAll('#tracks .track img')].every((i) => i.complete "
                                   "|| i.getBoundingClientRect().top > innerHeight)",
                                   timeout=300_000)
        page.click("#timecode")
        runs = {}
        for name, key, sign in (("+1 frame", "ArrowRight", 1), ("-1 frame", "ArrowLeft", -1), ("+1 s", "Shift+ArrowRight", 0)):
            before = page.evaluate("window.veilTiming.frames.length")
            n = steps if sign else 3
            for _ in range(n):
                want = page.evaluate("S.index") + sign if sign else None
                page.keyboard.press(key)
                if want is not None:
                    page.wait_for_function(f"document.querySelector('#frame').dataset.index === '{want}'")
                else:
                    page.wait_for_function("document.querySelector('#frame').dataset.index === String(S.index)")
            runs[name] = page.evaluate(f"window.veilTiming.frames.slice({before})")
        return first, runs, tuple(page.evaluate("[S.plan.input.width, S.plan.input.height]"))
    finally:
        browser.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="video/pedestrians_1080p.mp4")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--prefetch", type=int, nargs="+", default=[0, 4],
                    help="`veil serve --prefetch` settings compared on the same job, in turn")
    ap.add_argument("--rounds", type=int, default=2, help="each setting measured this many times, alternating")
    ap.add_argument("--settle", action="store_true",
                    help="step only once every track's thumbnail has loaded (else steps compete with them)")
    args = ap.parse_args()
    src = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")) / args.clip
    results: dict[int, dict[str, list[float]]] = {k: {} for k in args.prefetch}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        data = Path(tmp) / "data"
        with veil_server(data) as url:  # analysed once; a restarted server keeps the job in review
            job = upload(url, src)
            while get_json(f"{url}/api/jobs/{job}")["status"] not in ("review", "failed"):
                time.sleep(1)
        for _ in range(args.rounds):
            for k in args.prefetch:
                with veil_server(data, "--prefetch", str(k)) as url:
                    first, runs, (w, h) = measure(p, url, job, args.steps, args.settle)
                results[k].setdefault("first", []).append(first)
                for name, ms in runs.items():
                    results[k].setdefault(name, []).extend(ms)
    print(f"{args.clip} ({w}x{h}), {args.rounds} round(s){', after the thumbnails' if args.settle else ''}, load average now {os.getloadavg()[0]:.1f}")
    for k, res in results.items():
        print(f"--prefetch {k}: time to first frame "
              f"{', '.join(f'{v:.0f}' for v in res.pop('first'))} ms (navigation start -> exact frame 0 shown)")
        for name, ms in res.items():
            print(f"  step {name}: {stats(ms)}")


if __name__ == "__main__":
    main()
