"""Depth-aware anonymization: per-face distance accuracy on kinect_person, and the cost per
frame of each distance backend.

    python bench/depth_eval.py --data ../shared/data [--out depth_eval.json] [--figure docs/figures/depth_landmark_error.png]

1. Accuracy. Every frame of ``depth/kinect_person`` goes through CenterFace; each face with
   landmarks gets a landmark distance (pinhole, focal from the intrinsics: fx = 525); the
   reference is the sensor depth at the face (median of the valid depth pixels in the central
   half of the box). Per-frame signed and absolute relative errors go to the JSON report; the
   target is a median absolute relative error within 10 %.
2. Cost per frame, 640x480, CPU, after the detector (detection is the same for all):
   landmarks; RGB-D frames (16-bit PNG read + face sampling); ONNX mono depth at a low input
   resolution, every frame and every k-th frame. Real MiDaS / Depth Anything weights cannot be
   downloaded here, so the mono-depth cost is measured on a stand-in ONNX graph of similar
   compute built by this script (a small conv encoder-decoder); it shows the plumbing and
   resize overhead, not the cost of the real networks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from veil.api import Anonymizer  # noqa: E402
from veil.depth import DistanceAnnotator, OnnxMonoDepth, RGBDFrames, face_depths  # noqa: E402


def _intrinsics_fx(xml: Path) -> float:
    fs = cv2.FileStorage(str(xml), cv2.FILE_STORAGE_READ)
    k = fs.getNode("intrinsic").mat()
    fs.release()
    return float(k[0, 0])


def accuracy(folder: Path) -> dict:
    frames = sorted(p for p in folder.glob("*.jpg") if "_" not in p.stem)
    anon = Anonymizer(tracking=False)
    sensor = RGBDFrames(folder)
    rows = []
    for i, path in enumerate(frames):
        fx = _intrinsics_fx(path.with_name(path.stem + "_camera.xml"))
        rgb = cv2.imread(str(path))[..., ::-1].copy()
        faces = anon.detect(rgb)
        ann = DistanceAnnotator(focal_px=fx)
        faces = ann.annotate(rgb, faces)
        truth = face_depths(sensor.depth(rgb, i), faces.xyxy, rgb.shape[:2])
        for j in range(len(faces)):
            d, t = float(faces.distance_m[j]), float(truth[j])
            rec = {"frame": path.name, "fx": fx, "distance_m": round(d, 3) if np.isfinite(d) else None,
                   "sensor_m": round(t, 3) if np.isfinite(t) else None,
                   "source": str(faces.data["distance_source"][j])}
            if np.isfinite(d) and np.isfinite(t):
                rec["rel_error"] = round((d - t) / t, 4)
            rows.append(rec)
    errs = np.array([abs(r["rel_error"]) for r in rows if "rel_error" in r])
    return {"frames": len(frames), "faces_with_distance": int(len(errs)), "faces": len(rows),
            "median_abs_rel_error": round(float(np.median(errs)), 4),
            "mean_abs_rel_error": round(float(errs.mean()), 4),
            "within_10pct": int((errs <= 0.10).sum()), "per_face": rows}


def _standin_depth_onnx(path: Path) -> Path:
    """Conv encoder-decoder stand-in (not trained, not MiDaS): 4 stride-2 convs down, 4 up."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    chans = [3, 32, 64, 128, 256]
    x = "image"
    for i in range(4):
        w = numpy_helper.from_array((rng.normal(0, 0.05, (chans[i + 1], chans[i], 3, 3))).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes += [helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], strides=[2, 2], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        x = f"r{i}"
    for i in range(4):
        cin, cout = chans[4 - i], chans[3 - i] if i < 3 else 1
        w = numpy_helper.from_array((rng.normal(0, 0.05, (cout, cin, 3, 3))).astype(np.float32), f"u{i}")
        inits.append(w)
        nodes += [helper.make_node("Resize", [x, "", "sc"], [f"up{i}"], mode="nearest"),
                  helper.make_node("Conv", [f"up{i}", f"u{i}"], [f"d{i}"], pads=[1, 1, 1, 1])]
        x = f"d{i}"
    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc"))
    nodes += [helper.make_node("Abs", [x], ["a"]), helper.make_node("Squeeze", ["a", "ax"], ["depth"])]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "ax"))
    g = helper.make_graph(nodes, "standin", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
                          [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, "h", "w"])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def cost(folder: Path, repeats: int = 3) -> dict:
    frames = sorted(p for p in folder.glob("*.jpg") if "_" not in p.stem)
    anon = Anonymizer(tracking=False)
    imgs = [cv2.imread(str(p))[..., ::-1].copy() for p in frames]
    dets = [anon.detect(im) for im in imgs]
    t = time.perf_counter()
    for im in imgs:
        anon.detect(im)
    detect_ms = (time.perf_counter() - t) / len(imgs) * 1000
    out = {"detector_ms_per_frame (reference)": round(detect_ms, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        model = _standin_depth_onnx(Path(tmp) / "standin.onnx")
        backends = {
            "landmarks": lambda: DistanceAnnotator(focal_px=525),
            "rgbd (16-bit PNG per frame)": lambda: DistanceAnnotator(focal_px=525, backend=RGBDFrames(folder)),
            "mono-depth stand-in, 256 px, every frame": lambda: DistanceAnnotator(
                focal_px=525, backend=OnnxMonoDepth(model, "midas", 256), every=1),
            "mono-depth stand-in, 256 px, every 5th frame": lambda: DistanceAnnotator(
                focal_px=525, backend=OnnxMonoDepth(model, "midas", 256), every=5),
            "mono-depth stand-in, 518 px (DA-V2 size), every frame": lambda: DistanceAnnotator(
                focal_px=525, backend=OnnxMonoDepth(model, "depth-anything", 518), every=1),
        }
        for name, make in backends.items():
            best = np.inf
            for _ in range(repeats):
                ann = make()
                t = time.perf_counter()
                for im, f in zip(imgs, dets):
                    ann.annotate(im, f)
                best = min(best, (time.perf_counter() - t) / len(imgs) * 1000)
            out[name] = round(best, 2)
    return {"ms_per_frame": out, "frames": len(imgs), "resolution": "640x480"}


def error_figure(acc: dict, path: Path) -> None:
    """Signed relative error of the landmark distance per frame, as the person turns (no pixels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faces = acc["per_face"]
    x = [int(Path(f["frame"]).stem) for f in faces]
    y = [100 * f["rel_error"] for f in faces]
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    ax.axhspan(-10, 10, color="#55A868", alpha=0.15, label="within 10 % of the sensor")
    ax.axhline(0, color="k", lw=0.6)
    ax.plot(x, y, "o-", color="#4C72B0", ms=4, label="landmarks + head-pose fit")
    ax.set_xlabel(f"frame (person turning from frontal to past profile; {acc['frames'] - len(faces)} frames "
                  "without a face)", fontsize=8)
    ax.set_ylabel("distance error %")
    ax.set_title(f"Landmark distance vs Kinect depth: median |error| {100 * acc['median_abs_rel_error']:.1f} %",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("depth_eval.json"))
    ap.add_argument("--figure", type=Path, help="plot the per-frame error (no pixels)")
    ap.add_argument("--replot", action="store_true", help="only redraw --figure from --out")
    args = ap.parse_args()
    if args.replot:
        error_figure(json.loads(args.out.read_text())["accuracy"], args.figure)
        return
    folder = args.data / "depth" / "kinect_person"
    res = {"accuracy": accuracy(folder), "cost": cost(folder)}
    args.out.write_text(json.dumps(res, indent=1))
    if args.figure:
        error_figure(res["accuracy"], args.figure)
    acc = res["accuracy"]
    print(f"kinect_person: {acc['faces_with_distance']} faces with a landmark distance in {acc['frames']} frames; "
          f"median |rel error| {acc['median_abs_rel_error']:.3f}, mean {acc['mean_abs_rel_error']:.3f}, "
          f"{acc['within_10pct']} within 10 %")
    for k, v in res["cost"]["ms_per_frame"].items():
        print(f"  {k}: {v} ms/frame")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
