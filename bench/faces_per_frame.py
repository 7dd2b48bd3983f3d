"""How many times a :class:`veil.faces.Faces` is built (and validated) per frame, per stage setup.

Runs the pipeline on the first frames of video/hamilton ($VEIL_DATA) three ways: the default
(detect -> track -> policy -> render), with distance rules (landmark distance, --only-beyond),
and with identity (--spare, the performer enrolled from the clip's reference photo). Counts
``Faces.__post_init__`` calls. Also prints a digest of every frame's faces records and pixels,
so that a refactoring can show its outputs did not change.

    python bench/faces_per_frame.py [--frames 60]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's veil

from veil.config import Config  # noqa: E402
from veil.faces import Faces  # noqa: E402
from veil.pipeline import Pipeline  # noqa: E402


def frames(clip: Path, n: int):
    with av.open(str(clip)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= n:
                return
            yield f.to_ndarray(format="rgb24")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    folder = Path(os.environ.get("VEIL_DATA", "../shared/data")) / "video" / "hamilton"
    clip = folder / "short_hamilton_clip.mp4"
    count = [0]
    original = Faces.__post_init__

    def counting(self):
        count[0] += 1
        original(self)

    Faces.__post_init__ = counting  # type: ignore[method-assign]
    setups: dict[str, Config] = {
        "default": Config(),
        "distance (--hfov 60 --only-beyond 3)": Config().updated(depth={"hfov": 60.0, "only_beyond": 3.0}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            import dlib  # noqa: F401

            from veil.identify import Gallery

            os.environ.pop("VEIL_GALLERY_KEY", None)
            with Gallery(Path(tmp) / "g.sqlite", create=True) as g:
                g.enroll("lin-manuel-miranda", [folder / "reference_faces" / "lin-manuel-miranda.png"])
            setups["identity (--spare)"] = Config().updated(
                identify={"gallery": Path(tmp) / "g.sqlite", "spare": ["lin-manuel-miranda"]})
        except ImportError:
            print("dlib missing: identity setup skipped")
        for name, cfg in setups.items():
            pipe = Pipeline(cfg)
            digest = hashlib.sha256()
            count[0] = 0
            n = faces = 0
            for res in pipe.run(frames(clip, args.frames), 29.97):
                n += 1
                faces += len(res.faces)
                digest.update(json.dumps(res.faces.records(), sort_keys=True).encode())
                digest.update(res.frame.tobytes())
            print(f"{name}: {n} frames, {faces} face-frames, {count[0]} Faces built = "
                  f"{count[0] / n:.2f} per frame; outputs sha256 {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
