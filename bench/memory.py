"""Memory of a run: does it grow with the length of a video, and how much does a big image take?

    python bench/memory.py [--frames 300] [--sizes 8000x5000,13000x13000] [--out memory.json]

(``--frames 0``: images only.)

1. Video length. A clip of eight small copies of the astronaut photo drifting sideways (eight
   faces in every frame, 576x256, H.264) is rendered to a temporary folder at ``--frames`` and 4x that; each goes
   through ``Anonymizer.video`` in a fresh subprocess, without a report and with one. Reported:
   peak RSS and the Python heap still allocated after the run (tracemalloc), and the report
   size. Flat means that four times the frames cost no more memory.
2. Big images. The astronaut photo tiled to each ``--sizes`` (JPEG, quality 90) goes through
   ``Anonymizer.image`` (JPEG and PNG output) in a fresh subprocess; reported: peak RSS, the
   part of it above the RSS just before the image (``run_mb``), veil's estimate from the header
   (``read_image``'s memory check) and whether the image was refused.

Each measurement runs in its own process so that peaks do not mix. Peak RSS is ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VIDEO_RUN = r"""
import json, resource, sys, tracemalloc
import veil
src, dst, report = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    anon = veil.Anonymizer(report_path=report)
except Exception:  # veil before per-frame records went to disk
    anon = veil.Anonymizer()
    anon.report_path = report
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
item = anon.video(src, dst, overwrite=True)
if report:
    anon.write_report(report)
retained = tracemalloc.get_traced_memory()[0]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"frames": item.counts["frames"], "faces": item.counts["faces"], "model_rss_mb": base / 1024,
                  "peak_rss_mb": peak / 1024, "retained_heap_mb": retained / 2**20}))
"""

IMAGE_RUN = r"""
import json, resource, sys
import veil
from PIL import Image
try:
    from veil.io.images import decode_bytes, write_bytes_per_pixel
except ImportError:  # veil before the memory check
    decode_bytes = None
src, dst = sys.argv[1], sys.argv[2]
anon = veil.Anonymizer(preset="fast")
rss_before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
with Image.open(src) as im:
    w, h = im.size
    estimate = max(decode_bytes(im), w * h * (6 + write_bytes_per_pixel(dst))) if decode_bytes else 0
error = None
try:
    anon.image(src, dst, overwrite=True)
except Exception as exc:
    error = str(exc).split(": ", 1)[-1]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": f"{w}x{h}", "output": dst.rsplit(".", 1)[-1], "peak_rss_mb": peak,
                  "run_mb": peak - rss_before, "estimate_mb": estimate / 2**20, "refused": error}))
"""


def render_clip(path: Path, frames: int) -> None:
    import av
    import numpy as np
    import skimage.data

    small = np.ascontiguousarray(skimage.data.astronaut()[::4, ::4])  # 128 x 128, one face
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 576, 256, "yuv420p"
        for i in range(frames):
            frame = np.zeros((256, 576, 3), np.uint8)
            x = i % 64
            for row in range(2):
                for col in range(4):
                    frame[128 * row:128 * (row + 1), x + 128 * col:x + 128 * (col + 1)] = small
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


def render_image(path: Path, w: int, h: int) -> None:
    import numpy as np
    import skimage.data
    from PIL import Image

    a = skimage.data.astronaut()
    Image.fromarray(np.tile(a, (h // 512 + 1, w // 512 + 1, 1))[:h, :w]).save(path, quality=90)


def child(code: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--sizes", default="8000x5000,13000x13000")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result: dict = {"video": [], "images": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in (args.frames, 4 * args.frames) if args.frames else ():
            clip = tmp / f"clip{n}.mp4"
            render_clip(clip, n)
            for report in ("", str(tmp / "r.json")):
                row = child(VIDEO_RUN, str(clip), str(tmp / "out.mp4"), report)
                row["report"] = bool(report)
                if report:
                    row["report_mb"] = Path(report).stat().st_size / 2**20
                result["video"].append(row)
                print(json.dumps(row), flush=True)
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            src = tmp / f"big_{size}.jpg"
            # rendered in a child too: a parent's high-water mark can show up in its children's ru_maxrss
            child(f"import sys; sys.path.insert(0, 'bench'); import memory; memory.render_image("
                  f"__import__('pathlib').Path({str(src)!r}), {w}, {h}); print('{{}}')")
            for suffix in (".jpg", ".png"):
                row = child(IMAGE_RUN, str(src), str(tmp / f"out{suffix}"))
                result["images"].append(row)
                print(json.dumps(row), flush=True)
            src.unlink()
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
