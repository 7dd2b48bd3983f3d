"""Selective anonymization with veil's Python API: by identity, and by distance to the camera.

Runs on real photos of the identity set in ``$VEIL_DATA/reid/face_recognition`` (see
docs/analysis.md, question 7, for a walk-through):

1. **Identity.** Barack Obama is enrolled from one photo into a gallery of our own (encrypted,
   in the output folder). On another photo of him with Joe Biden, ``spare=["obama"]`` keeps
   Obama visible and hides Biden; ``only=["obama"]`` does the opposite. A face veil is not
   sure about is hidden in both modes.
2. **Depth.** On a photo of two actors with a small face in the background,
   ``only_beyond=3.0`` hides only faces estimated farther than 3 m (distance from the 5
   landmarks and the focal length; this photo has no EXIF focal length, so ``hfov=60``
   states the camera's field of view), and ``keep_nearest=1`` keeps only the nearest face.
   A face whose distance cannot be estimated is hidden.

    python examples/selective_and_depth.py [--data DIR] [--out DIR]

Writes the anonymized photos and ``summary.json`` (every face: position, identity or distance,
decision, reason) into ``--out``; prints one table per step. Needs the ``identify`` extra
(``pip install '.[identify]'``: dlib and its models).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

import veil
from veil.identify import Gallery

PHOTOS = Path("reid") / "face_recognition"
ENROL = PHOTOS / "knn_examples" / "train" / "obama" / "obama.jpg"  # the one enrolment photo
PAIR = PHOTOS / "examples_top" / "two_people.jpg"                # Obama (left) and Biden (right)
DEPTH = PHOTOS / "knn_examples" / "test" / "kit_with_rose.jpg"    # two actors, people behind them


def load_rgb(path: Path) -> np.ndarray:
    """veil's API takes RGB uint8 frames; OpenCV reads BGR."""
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def faces_left_to_right(result) -> list[dict]:
    """The per-face records of a result (box, score, identity, distance, decision, reason),
    left to right, with what this example prints."""
    records = sorted(result.faces.records(), key=lambda r: r["box"][0])
    return [{"x": round(r["box"][0]), "height_px": round(r["box"][3] - r["box"][1]),
             "identity": r.get("identity"),
             "distance_m": r.get("distance_m"), "anonymized": r["anonymized"], "reason": r["reason"]}
            for r in records]


def show(title: str, faces: list[dict]) -> None:
    print(f"\n{title}")
    print(f"  {'x':>5} {'height':>6} {'distance':>9}  {'decision':<10} reason")
    for f in faces:
        dist = f"{f['distance_m']:.2f} m" if f["distance_m"] is not None else "-"
        print(f"  {f['x']:>5} {f['height_px']:>6} {dist:>9}  {'hidden' if f['anonymized'] else 'VISIBLE':<10} {f['reason']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=Path("examples_output"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, list[dict]] = {}

    # -- 1. identity: enrol once, then spare or target -------------------------------------
    gallery = args.out / "gallery.sqlite"   # embeddings encrypted; key file beside it (0600)
    if not gallery.exists():
        with Gallery(gallery, create=True) as g:
            g.enroll("obama", [args.data / ENROL], purpose="veil example")
    pair = load_rgb(args.data / PAIR)
    for mode in ("spare", "only"):
        anon = veil.Anonymizer(gallery=gallery, **{mode: ["obama"]})
        result = anon.frame(pair)           # one RGB frame in, the anonymized frame + faces out
        summary[mode] = faces_left_to_right(result)
        show(f"{mode}=['obama'] on {PAIR.name}", summary[mode])
        anon.image(args.data / PAIR, args.out / f"two_people_{mode}.jpg", overwrite=True)  # the same on a file

    # -- 2. depth: hide the background, or keep the nearest -------------------------------
    scene = load_rgb(args.data / DEPTH)
    for name, rule in (("only_beyond", {"only_beyond": 3.0, "hfov": 60.0}), ("keep_nearest", {"keep_nearest": 1})):
        anon = veil.Anonymizer(**rule)
        result = anon.frame(scene)
        summary[name] = faces_left_to_right(result)
        show(f"{name}: {rule} on {DEPTH.name}", summary[name])
        cv2.imwrite(str(args.out / f"kit_with_rose_{name}.jpg"), cv2.cvtColor(result.frame, cv2.COLOR_RGB2BGR))

    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {args.out}/summary.json and the anonymized photos")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
