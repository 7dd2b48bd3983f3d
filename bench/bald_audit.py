"""What ``veil data audit`` says when bald-head images are added to a training set.

There is no training set with bald images here (veil does not train its detector), so this
builds the situation from real images: the WIDER FACE dev split with its ground-truth boxes
(group ``set=wider``) plus the bald collage's 24 faces (group ``set=bald``; boxes: the
detector's full-resolution boxes, the reference of ``bench/bald_collage.py``). The collage's
boxes are written under two labelling conventions, each audited as its own training set:

* ``face``: the box as CenterFace draws it (brows to chin, the WIDER convention);
* ``head``: the same box grown upwards by veil's own head growth (:data:`veil.render.mask.HEAD_UP`,
  20 % of the height above, :func:`~veil.render.mask.head_boxes`), i.e. what an annotator
  who boxes "the whole head" of a bald man draws (there is no hairline to stop at).

For each it runs ``veil data audit`` (the product command) into ``--out``/``<convention>``
and prints the per-group box size and aspect and whether the audit flags the group; the
COCO file and a folder of symbolic links to the images are made in a temporary folder (no
data is copied). Also prints the share of each set's faces in WIDER's size bins, next to the
balanced preset's recall in those bins (docs/benchmarks.md §8.1): which faces the added images
could teach the detector about.

    python bench/bald_audit.py --out build/bald_audit
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.eval.data import default_data  # noqa: E402
from veil.eval.slices import SIZE_BINS  # noqa: E402
from veil.io.images import read_image  # noqa: E402
from veil.io.wider_format import read_wider_gt  # noqa: E402
from veil.render.mask import head_boxes  # noqa: E402

#: recall % of the balanced preset in each of veil.eval.slices.SIZE_BINS (box height) on the
#: WIDER dev split's valid faces (benchmarks §8.1)
RECALL_BALANCED = (31.5, 84.6, 91.7, 93.9, 96.1)


def coco(wider_dir: Path, bald_path: Path, links: Path, convention: str) -> dict:
    """A COCO document: the WIDER dev gt boxes and the collage's boxes under ``convention``."""
    import veil

    gt = read_wider_gt(wider_dir / "wider_dev_bbx_gt.txt")
    images, anns = [], []
    for k, (name, g) in enumerate(gt.items()):
        images.append({"id": k, "file_name": f"wider/{name}"})
        for box in g.boxes:
            if box[2] > 0 and box[3] > 0:
                anns.append({"id": len(anns), "image_id": k, "category_id": 1, "bbox": [float(v) for v in box[:4]],
                             "attributes": {"set": "wider"}})
    rgb = read_image(bald_path).rgb
    faces = veil.Anonymizer(max_side=0).detect(rgb, min_score=0.1)
    keep = faces.scores >= 0.7  # bench/bald_collage.py's reference, checked by eye
    xyxy = faces.xyxy[keep]
    if convention == "head":
        xyxy = head_boxes(xyxy, faces.landmarks[keep])
    bald_id = len(images)
    images.append({"id": bald_id, "file_name": f"bald/{bald_path.name}", "width": rgb.shape[1], "height": rgb.shape[0]})
    for b in xyxy:
        anns.append({"id": len(anns), "image_id": bald_id, "category_id": 1,
                     "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                     "attributes": {"set": "bald"}})
    (links / "wider").mkdir(parents=True, exist_ok=True)
    for event in (wider_dir / "images").iterdir():
        if not (links / "wider" / event.name).exists():
            (links / "wider" / event.name).symlink_to(event)
    (links / "bald").mkdir(exist_ok=True)
    if not (links / "bald" / bald_path.name).exists():
        (links / "bald" / bald_path.name).symlink_to(bald_path)
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "face"}]}


def size_shares(doc: dict) -> dict[str, list[float]]:
    """Share (%) of each set's faces in SIZE_BINS, by box height (WIDER's size slices)."""
    out: dict[str, list[float]] = {}
    for s in ("wider", "bald"):
        h = np.array([a["bbox"][3] for a in doc["annotations"] if a["attributes"]["set"] == s])
        out[s] = [100.0 * float(np.mean((h >= lo) & (h < hi))) for _, lo, hi in SIZE_BINS]
    return out


def detector_aspect_on_wider(wider_dir: Path, min_height: float = 128, limit: int = 120) -> tuple[float, float, int]:
    """Median aspect h/w of CenterFace's boxes and of the matched WIDER gt boxes (IoU >= 0.5),
    over faces at least ``min_height`` px high in the first ``limit`` images that have one:
    whether the detector's box ends where WIDER's annotators end it, on heads with hair."""
    import veil
    from veil.boxes import box_iou

    gt = read_wider_gt(wider_dir / "wider_dev_bbx_gt.txt")
    anon = veil.Anonymizer(max_side=0)
    det_a, gt_a, used = [], [], 0
    for name, g in gt.items():
        big = g.boxes[(g.boxes[:, 3] >= min_height) & (g.boxes[:, 2] > 0)][:, :4].astype(float)
        if not len(big):
            continue
        used += 1
        faces = anon.detect(read_image(wider_dir / "images" / name).rgb)
        xyxy = big.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        iou = box_iou(xyxy, faces.xyxy)
        for i in range(len(big)):
            if iou.shape[1] and iou[i].max() >= 0.5:
                d = faces.xyxy[int(iou[i].argmax())]
                det_a.append((d[3] - d[1]) / (d[2] - d[0]))
                gt_a.append(big[i, 3] / big[i, 2])
        if used >= limit:
            break
    return float(np.median(det_a)), float(np.median(gt_a)), len(det_a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bald_audit")
    args = ap.parse_args(argv)
    summary = {}
    with tempfile.TemporaryDirectory(prefix="veil-bald-audit-") as tmp:
        links = Path(tmp) / "images"
        for convention in ("face", "head"):
            doc = coco(args.data / "widerface-dev", args.data / "bald" / "bald_guys.jpg", links, convention)
            path = Path(tmp) / f"train_{convention}.json"
            path.write_text(json.dumps(doc))
            out = args.out / convention
            subprocess.run([sys.executable, "-m", "veil", "data", "audit", "--coco", str(path), "--images", str(links),
                            "--out", str(out), "-q"], check=True, cwd=ROOT)
            result = json.loads((out / "audit.json").read_text())
            summary[convention] = {"audit": out / "audit.json", "shares": size_shares(doc)}
            print(f"\n== convention '{convention}': {out}/audit.md")
            boxes = result["data"]["train"]["boxes"]
            print(f"  all faces: median size {boxes['overall']['size_px']['median']:.0f} px, "
                  f"aspect h/w {boxes['overall']['aspect']['median']:.2f}")
            for value, g in boxes["groups"]["set"].items():
                if not g["faces"]:
                    continue
                print(f"  set={value}: {g['faces']} faces, median size {g['size_px']['median']:.0f} px, aspect h/w "
                      f"{g['aspect']['median']:.2f} ({100 * g['aspect_vs_overall']:+.1f} % vs all), "
                      f"flagged: {'not judged (< min_group_faces)' if g['flag'] is None else g['flag']}")
            print("  " + result["summary"].replace("\n\n", "\n  "))
    det, ref, n = detector_aspect_on_wider(args.data / "widerface-dev")
    print(f"\nCenterFace vs WIDER gt on {n} matched faces >= 128 px (heads with and without hair): "
          f"median aspect h/w {det:.2f} (detector) vs {ref:.2f} (gt), {100 * (det / ref - 1):+.1f} %")
    shares = summary["face"]["shares"]
    print("\n| face height | balanced recall (§8.1, valid faces) | share of WIDER dev boxes | share of the bald faces |")
    print("|---|---:|---:|---:|")
    for k, ((label, _, _), rec) in enumerate(zip(SIZE_BINS, RECALL_BALANCED)):
        print(f"| {label} | {rec} % | {shares['wider'][k]:.1f} % | {shares['bald'][k]:.0f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
