"""Verification ROC of veil's face embedder (the one behind ``--spare`` / ``--only``).

Two sets from ``$VEIL_DATA/reid``:

* ``deepface``: the 300 labelled pairs of ``master.csv`` (largest face of each image);
* ``face_recognition``: every pair of faces of ``identities.csv`` (multi-person photos are
  split into faces left to right; a photo whose face count differs from its label is
  skipped and reported).

Faces are found by veil's detector (CenterFace, long side 1280, score >= 0.5), embedded
exactly as the identify stage does (``embedder.embed_faces``). Prints, per set, the AUC and
the TAR / FAR at a few thresholds, and the chosen operating threshold.

    python bench/reid_roc.py [--out-json /tmp/roc.json]
    python bench/reid_roc.py --cost     # hamilton: --spare vs anonymize-everyone, wall time and embeddings
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.config import DetectConfig  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.eval.privacy import load_rgb, read_pairs  # noqa: E402
from veil.identify import build_embedder  # noqa: E402

THRESHOLDS = [0.4, 0.45, 0.5, 0.55, 0.6, 0.65]


def faces_of(det, emb, path: Path, min_score: float = 0.5):
    rgb = load_rgb(path)
    faces = det.detect([rgb], min_score)[0]
    if not len(faces):
        return faces, np.zeros((0, emb.dim), np.float32)
    order = np.argsort((faces.xyxy[:, 0] + faces.xyxy[:, 2]) / 2)
    faces = faces[order]
    return faces, emb.embed_faces(rgb, faces)


def roc(dist: np.ndarray, same: np.ndarray) -> dict:
    pos, neg = dist[same], dist[~same]
    rows = {}
    for t in THRESHOLDS:
        rows[f"{t:g}"] = {"TAR": round(float((pos < t).mean()), 4), "FAR": round(float((neg < t).mean()), 4)}
    # AUC: probability a same pair is closer than a different pair
    auc = float((pos[:, None] < neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    return {"pairs": int(len(dist)), "same": int(same.sum()), "different": int((~same).sum()),
            "auc": round(auc, 4), "at": rows,
            "same_max": round(float(pos.max()), 3), "diff_min": round(float(neg.min()), 3)}


def deepface(det, emb, folder: Path) -> dict:
    pairs = read_pairs(folder / "master.csv")
    cache: dict[str, np.ndarray | None] = {}

    def vec(name):
        if name not in cache:
            faces, e = faces_of(det, emb, folder / name)
            if not len(faces):
                cache[name] = None
            else:
                wh = faces.wh
                cache[name] = e[int(np.argmax(wh[:, 0] * wh[:, 1]))]
        return cache[name]

    d, s, skipped = [], [], []
    for p in pairs:
        a, b = vec(p.file_x), vec(p.file_y)
        if a is None or b is None:
            skipped.append([p.file_x, p.file_y])
            continue
        d.append(float(np.linalg.norm(a - b)))
        s.append(p.same)
    out = roc(np.array(d), np.array(s))
    out["skipped"] = skipped
    return out


def face_recognition(det, emb, folder: Path) -> dict:
    with open(folder / "identities.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    items, skipped = [], []
    for r in rows:
        names = r["identities_left_to_right"].split(";")
        faces, e = faces_of(det, emb, folder / r["file"])
        if len(faces) == len(names):
            items += [(r["file"], n, v) for n, v in zip(names, e)]
        elif len(names) == 1 and len(faces) > 1:  # a bystander: take the largest face
            wh = faces.wh
            items.append((r["file"], names[0], e[int(np.argmax(wh[:, 0] * wh[:, 1]))]))
        else:
            skipped.append([r["file"], f"{len(faces)} faces for {len(names)} label(s)"])
    d, s = [], []
    for (fa, na, va), (fb, nb, vb) in itertools.combinations(items, 2):
        if fa == fb:
            continue
        d.append(float(np.linalg.norm(va - vb)))
        s.append(na == nb)
    out = roc(np.array(d), np.array(s))
    out["faces"] = len(items)
    out["skipped"] = skipped
    return out


def cost(data: Path, repeats: int = 2) -> dict:
    """Wall time of ``Anonymizer.video`` on video/hamilton, anonymize-everyone vs ``--spare``
    (performer enrolled from reference_faces), alternating runs; and the embeddings count."""
    import tempfile

    import veil
    from veil.identify import Gallery

    folder = data / "video" / "hamilton"
    clip = folder / "short_hamilton_clip.mp4"
    tmp = Path(tempfile.mkdtemp())
    os.environ.setdefault("VEIL_HOME", str(tmp / "home"))
    with Gallery(tmp / "g.sqlite", create=True) as g:
        g.enroll("lmm", [folder / "reference_faces" / "lin-manuel-miranda.png"])
    everyone = veil.Anonymizer()
    spare = veil.Anonymizer(gallery=tmp / "g.sqlite", spare=["lmm"])
    times: dict[str, list[float]] = {"everyone": [], "spare": []}
    extra = None
    for k in range(repeats):
        for name, anon in (("everyone", everyone), ("spare", spare)):
            t = time.perf_counter()
            item = anon.video(clip, tmp / f"{name}{k}.mp4", overwrite=True)
            times[name].append(time.perf_counter() - t)
            extra = item.extra.get("identify", extra)
    best = {k: min(v) for k, v in times.items()}
    return {"seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
            "ratio_best": round(best["spare"] / best["everyone"], 3), "identify": extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--out-json", type=Path)
    ap.add_argument("--cost", action="store_true", help="only the hamilton cost measurement")
    args = ap.parse_args()
    if args.cost:
        print(json.dumps(cost(args.data), indent=2))
        return
    det = build_detector(DetectConfig(max_side=1280), batch=1)
    emb = build_embedder("dlib")
    t = time.perf_counter()
    res = {"embedder": emb.name,
           "deepface": deepface(det, emb, args.data / "reid" / "deepface"),
           "face_recognition": face_recognition(det, emb, args.data / "reid" / "face_recognition"),
           "seconds": None}
    res["seconds"] = round(time.perf_counter() - t, 1)
    for key in ("deepface", "face_recognition"):
        r = res[key]
        print(f"{key}: {r['pairs']} pairs ({r['same']} same), AUC {r['auc']}, "
              f"max same-pair distance {r['same_max']}, min different-pair distance {r['diff_min']}")
        for t_, v in r["at"].items():
            print(f"   threshold {t_:>5}: TAR {v['TAR']:.3f}  FAR {v['FAR']:.4f}")
        if r["skipped"]:
            print(f"   skipped: {r['skipped']}")
    if args.out_json:
        args.out_json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
