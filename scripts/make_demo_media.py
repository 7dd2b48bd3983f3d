"""Write demo inputs from photos that ship inside packages (no downloads).

- astronaut.png: scikit-image's photo of Eileen Collins (public domain, NASA)
- grace_hopper.jpg: matplotlib's sample photo, with a GPS tag added to show that veil strips it
- astronaut_pan.mp4: 3 s of a camera pan over the astronaut photo, with a 440 Hz audio track
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    astro = skimage.data.astronaut()
    Image.fromarray(astro).save(out / "astronaut.png")

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = Image.open(fh).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "DemoCam"  # Make
    gps = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    exif[0x8825] = gps
    hopper.save(out / "grace_hopper.jpg", exif=exif.tobytes(), quality=92)

    _pan_video(astro, out / "astronaut_pan.mp4")
    print(f"demo media written to {out}")


def _pan_video(img: np.ndarray, path: Path, seconds: float = 3.0, fps: int = 25) -> None:
    h, w = 360, 640
    big = np.asarray(Image.fromarray(img).resize((1024, 1024)))
    n = int(seconds * fps)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a_s = c.add_stream("aac", rate=44100)
        for i in range(n):
            x = int((1024 - w) * i / (n - 1))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(big[100 : 100 + h, x : x + w]), format="rgb24")
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        t = np.arange(int(44100 * seconds)) / 44100
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for k in range(0, len(tone), 1024):
            chunk = tone[k : k + 1024]
            af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            af.sample_rate = 44100
            af.pts = k
            af.time_base = Fraction(1, 44100)
            for p in a_s.encode(af):
                c.mux(p)
        for p in a_s.encode():
            c.mux(p)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo/input"))
