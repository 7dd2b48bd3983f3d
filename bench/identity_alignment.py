"""Which alignment feeds dlib's embedder best, measured on the frames of `veil eval identity`'s clips.

For each dev clip (enrolled from one photo, shown from another, with other people; see
``veil/eval/identity.py``) three frames are decoded; every face veil's detector finds is
matched to its true person and embedded with each alignment variant, and compared with the
enrolment photo embedded the same way:

* ``veil``: dlib's 5-point predictor in the square box veil builds from CenterFace's landmarks
  (the product's path, ``DlibEmbedder.embed_faces``);
* ``veil+jitter10``: the same, 10 jittered copies averaged (dlib's ``num_jitters``);
* ``raw-box-5pt``: the 5-point predictor in CenterFace's own box;
* ``veil-box-68pt``: the 68-point predictor in veil's box;
* ``hog-5pt`` / ``hog-68pt``: dlib's HOG detector box (as ``face_recognition`` does), 5 or 68
  points (faces HOG misses are left out of these two).

The 68-point model is trained on iBUG 300-W, whose licence excludes commercial use, so it
could not be veil's default anyway; it is measured to see whether alignment is the problem.

    python bench/identity_alignment.py          # about 10 min on 2 shared cores
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veil.config import Config  # noqa: E402
from veil.detect import build_detector  # noqa: E402
from veil.eval import identity as E  # noqa: E402
from veil.eval.privacy import load_rgb  # noqa: E402
from veil.identify.embedder import dlib_box  # noqa: E402


def main() -> None:
    import av
    import dlib
    import face_recognition_models as frm

    data = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data"))
    det = build_detector(Config().detect, batch=1)
    sp5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    sp68 = dlib.shape_predictor(frm.pose_predictor_model_location())
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    hog = dlib.get_frontal_face_detector()

    def rect(b):
        return dlib.rectangle(*[int(round(float(v))) for v in b])

    def shapes(rgb, faces, i):
        box = faces.xyxy[i]
        out = {"veil": sp5(rgb, rect(dlib_box(faces, i))), "raw-box-5pt": sp5(rgb, rect(box)),
               "veil-box-68pt": sp68(rgb, rect(dlib_box(faces, i)))}
        found = list(hog(rgb, 1))
        if found:
            iou = E._iou(np.array([[h.left(), h.top(), h.right(), h.bottom()] for h in found], np.float32), box)
            if iou.max() > 0.3:
                h = found[int(np.argmax(iou))]
                out["hog-5pt"], out["hog-68pt"] = sp5(rgb, h), sp68(rgb, h)
        return out

    def embed(rgb, faces, i):
        vecs = {k: np.array(net.compute_face_descriptor(rgb, s), np.float32) for k, s in shapes(rgb, faces, i).items()}
        vecs["veil+jitter10"] = np.array(net.compute_face_descriptor(rgb, shapes(rgb, faces, i)["veil"], 10), np.float32)
        return vecs

    photos = E.identity_photos(data / "reid")
    boxes = E.photo_boxes(sorted({p for v in photos.values() for p in v}), det)
    photos = {k: v for k, v in ((k, E._distinct(v, boxes)) for k, v in photos.items()) if v}
    enrolled = {}
    for person, ph in photos.items():
        rgb = np.ascontiguousarray(load_rgb(ph[0]))
        f = det.detect([rgb], 0.5)[0]
        f = f[np.array([int(np.argmax(f.wh[:, 0] * f.wh[:, 1]))])]
        enrolled[person] = embed(rgb, f, 0)
    dist: dict[str, dict[bool, list[float]]] = defaultdict(lambda: {True: [], False: []})
    with tempfile.TemporaryDirectory() as tmp:
        for spec in E.dev_clips(photos):
            clip = Path(tmp) / "c.mp4"
            truth = E.render_clip(spec, boxes, clip, frames=30)
            with av.open(str(clip)) as c:
                frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            for k in (10, 15, 20):  # everyone in full view
                rgb = np.ascontiguousarray(frames[k])
                faces = det.detect([rgb], 0.5)[0]
                for name, tb in truth[k].items():
                    if not len(faces):
                        continue
                    iou = E._iou(faces.xyxy, tb)
                    j = int(np.argmax(iou))
                    if iou[j] < 0.3:
                        continue
                    for variant, v in embed(rgb, faces, j).items():
                        ref = enrolled[spec.person].get(variant)
                        if ref is not None:
                            dist[variant][name == spec.person].append(float(np.linalg.norm(v - ref)))
            print(f"  {spec.name}", flush=True)
    print(f"{'alignment':<14} {'same n':>6} {'median':>7} {'max':>6} | {'other n':>7} {'min':>6} {'median':>7} | gap")
    for variant, d in dist.items():
        s, o = np.array(d[True]), np.array(d[False])
        print(f"{variant:<14} {len(s):>6} {np.median(s):7.3f} {s.max():6.3f} | {len(o):>7} {o.min():6.3f} "
              f"{np.median(o):7.3f} | {o.min() - s.max():.3f}")


if __name__ == "__main__":
    main()
