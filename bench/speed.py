"""Side-by-side speed: veil vs deface vs a plain FFmpeg decode+encode (the floor).

Each tool runs as a separate process on the same clip, with the same video codec settings
(libx264, preset veryfast, CRF 20) wherever the tool lets us choose them; wall time includes
start-up, as a user sees it. The 720p clip is the 1080p one scaled down (CRF 10) before the runs;
the last figure per cell is the output file's size against the floor's (same encoder settings). Runs alternate between tools to spread machine noise; the best
of ``--repeat`` runs is reported.

    python bench/speed.py --data ../shared/data --repeat 2 --update-doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {"pedestrians_1080p": "video/pedestrians_1080p.mp4", "pedestrians_720p": "video/pedestrians_1080p.mp4",
         "hamilton_360p": "video/hamilton/short_hamilton_clip.mp4"}
#: clips made from another one before the runs (scaled near-losslessly, audio copied)
DERIVED = {"pedestrians_720p": "scale=-2:720"}
MARK_START, MARK_END = "<!-- speed:start -->", "<!-- speed:end -->"


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def tools(venv_bin: Path, presets: list[str]) -> dict[str, callable]:
    veil = str(venv_bin / "veil")
    deface = str(venv_bin / "deface")
    out = {
        "ffmpeg decode+encode (floor)": lambda src, dst: [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", src, "-c:v",
                                                          "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "copy", dst],
        "deface 1.5.0 (defaults)": lambda src, dst: [deface, src, "-o", dst, "--ffmpeg-config",
                                                      json.dumps({"codec": "libx264", "ffmpeg_params": ["-preset", "veryfast", "-crf", "20"]})],
    }
    for p in presets:
        out[f"veil --preset {p}"] = lambda src, dst, p=p: [veil, "anonymize", src, "-o", dst, "--preset", p, "-q", "--overwrite"]
    return out


def frames_of(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.demux(video=0) if _.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--presets", default="fast,balanced,deface")
    ap.add_argument("--clips", default=",".join(CLIPS), help="which of: " + ", ".join(CLIPS))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--update-doc", type=Path, default=None)
    args = ap.parse_args()

    venv_bin = Path(sys.executable).parent
    runs = tools(venv_bin, args.presets.split(","))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            src = args.data / CLIPS[clip]
            if clip in DERIVED:
                made = Path(tmp) / f"{clip}.mp4"
                subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-vf", DERIVED[clip], "-c:v",
                                "libx264", "-preset", "veryfast", "-crf", "10", "-c:a", "copy", str(made)], check=True)
                src = made
            n = frames_of(src)
            best: dict[str, float] = {}
            sizes: dict[str, int] = {}
            for r in range(args.repeat):
                for name, cmd in runs.items():
                    dst = Path(tmp) / f"{clip}_{abs(hash(name))}.mp4"
                    t = time.perf_counter()
                    proc = subprocess.run(cmd(str(src), str(dst)), capture_output=True, text=True)
                    dt = time.perf_counter() - t
                    if proc.returncode != 0:
                        raise SystemExit(f"{name} failed on {clip}: {proc.stderr.strip()[-500:]}")
                    best[name] = min(best.get(name, float("inf")), dt)
                    sizes[name] = dst.stat().st_size
                    print(f"{clip:18s} run {r + 1} {name:32s} {dt:7.2f} s", flush=True)
            results[clip] = {"frames": n, **best, "bytes": sizes}

    table = render(results)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))
    if args.update_doc:
        doc = args.update_doc.read_text()
        i, j = doc.index(MARK_START) + len(MARK_START), doc.index(MARK_END)
        args.update_doc.write_text(doc[:i] + "\n" + table + "\n" + doc[j:])


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"


def render(results: dict) -> str:
    clips = list(results)
    names = [k for k in results[clips[0]] if k not in ("frames", "bytes")]
    floor = "ffmpeg decode+encode (floor)"
    deface = "deface 1.5.0 (defaults)"
    head = "| tool | " + " | ".join(f"{c} ({results[c]['frames']} frames): s / fps / × floor / deface ÷ tool / file size ÷ floor's"
                                    for c in clips) + " |"
    lines = [f"Machine: {machine()}. Wall time per clip, best of the runs.", "", head, "|---|" + "---|" * len(clips)]
    for name in names:
        cells = []
        for c in clips:
            r = results[c]
            t = r[name]
            size = r["bytes"][name] / r["bytes"][floor]
            cells.append(f"{t:.2f} s / {r['frames'] / t:.1f} fps / {t / r[floor]:.2f}× / {r[deface] / t:.1f}× / {size:.2f}×")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
