"""Short clips cut from the evaluation data for the plan, serve and browser tests (built in
tmp dirs, never copied into the repository)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def cut(src: Path, dst: Path, start: float = 2.0, frames: int = 24, audio: bool = True) -> Path:
    """``frames`` frames of ``src`` from ``start`` seconds, re-encoded (H.264, AAC)."""
    cmd = [ffmpeg(), "-loglevel", "error", "-y", "-ss", str(start), "-i", str(src), "-frames:v", str(frames),
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run([*cmd, str(dst)], check=True)
    return dst


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def region_diff(a: np.ndarray, b: np.ndarray, box) -> float:
    """Mean absolute difference of two frames inside ``box`` (x1, y1, x2, y2)."""
    h, w = a.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    return float(np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2].astype(int)).mean())
