"""Folder throughput: ``--engine local`` vs ``--engine ray`` on this machine.

    VEIL_DATA=/work/shared/data python bench/ray_folder.py --event 0--Parade --out /tmp/ray_folder.json

Runs the same folder of WIDER FACE dev photos (1024 px wide, read in place, outputs in a tmp
dir) through the local path (one process, onnxruntime's default threads) and through a
private Ray instance on 127.0.0.1 (``--workers`` actors of ``--threads`` onnxruntime threads
each), and reports wall time and images per second; the Ray time is split into starting Ray
and the folder itself (actors starting and loading the model included). Outputs of the two
are compared (fraction of pixels that differ by more than 2 levels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's veil, not an installed one


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--event", default="0--Parade", help="WIDER FACE dev event folder")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--address", default=None, help="a Ray cluster (auto, ray://host:port); default: a private instance")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import veil
    from veil.engine import Engine

    folder = Path(os.environ.get("VEIL_DATA", "../shared/data")) / "widerface-dev" / "images" / args.event
    n = sum(1 for _ in folder.glob("*.jpg"))
    res: dict = {"folder": str(folder), "images": n, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        local = veil.Anonymizer()
        res["local_load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        local.tree(folder, Path(tmp) / "local")
        res["local_s"] = time.perf_counter() - t
        anon = veil.Anonymizer()
        anon.engine = Engine("ray", address=args.address, workers=args.workers, threads=args.threads)
        with anon:
            t = time.perf_counter()
            anon.engine.cluster()
            res["ray_start_s"] = time.perf_counter() - t
            t = time.perf_counter()
            items = anon.tree(folder, Path(tmp) / "ray")
            res["ray_s"] = time.perf_counter() - t
        res["ray_workers"] = sorted({str(i.extra.get("worker")) for i in items})
        diffs = []
        for p in sorted((Path(tmp) / "local").glob("*.jpg")):
            a = np.asarray(Image.open(p), np.int16)
            b = np.asarray(Image.open(Path(tmp) / "ray" / p.name), np.int16)
            diffs.append(float(np.mean(np.abs(a - b) > 2)))
        res["max_fraction_pixels_differing"] = max(diffs)
    res["local_images_per_s"] = n / res["local_s"]
    res["ray_images_per_s"] = n / res["ray_s"]
    res["load_after"] = os.getloadavg()[0]
    print(json.dumps(res, indent=1))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
