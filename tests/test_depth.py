"""Depth-aware anonymization: landmark distance, focal length, rules with hysteresis,
RGB-D frames, the ONNX mono-depth plumbing (a tiny graph built here), ``veil models fetch``,
and the background blur."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require
from veil.depth import DistanceAnnotator, RGBDFrames, blur_beyond, landmark_scale, resolve_focal
from veil.depth.landmarks import FACE_MODEL_MM
from veil.errors import InputError, ModelError
from veil.faces import ANONYMIZE, KEEP, Faces
from veil.policy.distance import KeepNearest, OnlyBeyond

F_COMPOSITE = 1000.0  # focal length (px) the composite scene is built for


def _project(z_mm: float, focal: float, yaw_deg: float = 0.0, cx: float = 320, cy: float = 240) -> np.ndarray:
    """The generic face model at depth ``z_mm``, turned by ``yaw_deg``, in pixels (pinhole)."""
    t = np.deg2rad(yaw_deg)
    X, Y, Z = FACE_MODEL_MM.T
    x = X * np.cos(t) + Z * np.sin(t)
    z = -X * np.sin(t) + Z * np.cos(t)
    depth = z_mm - z
    return np.stack([cx + focal * x / depth, cy + focal * Y / depth], -1).astype(np.float32)


def _faces(lms, track_ids=None) -> Faces:
    lms = np.asarray(lms, np.float32).reshape(-1, 5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no landmarks
        mins, maxs = np.nanmin(lms, axis=1), np.nanmax(lms, axis=1)
    xyxy = np.concatenate([mins - 20, maxs + 20], axis=1)
    xyxy = np.nan_to_num(xyxy, nan=100.0)
    return Faces(xyxy=xyxy, scores=np.full(len(lms), 0.9), landmarks=lms, track_id=track_ids)


# ----------------------------------------------------------------------------- estimator

@pytest.mark.parametrize("yaw", [0, 30, 60])
def test_landmark_distance_recovers_depth_of_turned_head(yaw):
    lm = _project(2000, 800, yaw)
    scale, pose, _ = landmark_scale(lm[None])
    assert 800 / scale[0] == pytest.approx(2000, rel=0.05)
    assert abs(abs(pose[0, 0]) - yaw) <= 6


def test_focal_resolution_order_and_units():
    assert resolve_focal(4000, 3000, {"FocalLengthIn35mmFilm": 43.27}) == (pytest.approx(5000, rel=1e-3), "exif-35mm")
    # 4.0 mm lens, 1000 px per cm on the sensor, image downscaled 2x from 4000 px
    tags = {"FocalLength": 4.0, "FocalPlaneXResolution": 1000.0, "FocalPlaneResolutionUnit": 3, "ExifImageWidth": 4000}
    assert resolve_focal(2000, 1500, tags)[0] == pytest.approx(200.0)
    assert resolve_focal(640, 480, {}, focal_px=525) == (525.0, "focal-px")
    assert resolve_focal(640, 480, None, hfov=90)[0] == pytest.approx(320.0)
    assert resolve_focal(640, 480, None) == (None, "none")


def test_exif_focal_accessor_and_per_image_focal(tmp_path, astronaut):
    from PIL import ExifTags, Image

    from veil.io.images import read_image

    exif = Image.Exif()
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.FocalLengthIn35mmFilm: 50, ExifTags.Base.FocalLength: 4.2}
    path = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(path, exif=exif.tobytes())
    loaded = read_image(path)
    assert loaded.camera_tags()["FocalLengthIn35mmFilm"] == 50
    ann = DistanceAnnotator(focal_px=10.0)
    f, src = ann.focal_for(loaded.rgb, loaded.camera_tags())  # the image's camera data, passed with it
    assert src == "exif-35mm" and f == pytest.approx(50 * np.hypot(512, 512) / np.hypot(36, 24))
    assert ann.focal_for(loaded.rgb.copy()) == (10.0, "focal-px")  # another frame: not this image's EXIF


def test_unknown_distance_is_anonymized_with_a_clear_reason():
    good = _project(1500, 800)
    outside = _project(1500, 800, cx=5)  # left eye beyond the left edge
    faces = _faces([good, np.full((5, 2), np.nan), outside])
    ann = DistanceAnnotator(focal_px=800)
    out = OnlyBeyond(3.0).decide(ann.annotate(np.zeros((480, 640, 3), np.uint8), faces))
    assert out.distance_m[0] == pytest.approx(1.5, rel=0.05) and out.decision[0] == KEEP
    assert np.isnan(out.distance_m[1:]).all() and list(out.decision[1:]) == [ANONYMIZE, ANONYMIZE]
    assert "no landmarks" in out.reason[1] and "partly outside the frame" in out.reason[2]
    recs = out.records()
    assert recs[0]["distance_source"] == "landmarks" and "distance_m" not in recs[1]
    # no focal length at all: distance unknown -> anonymized, but keep-nearest still ranks
    ann = DistanceAnnotator()
    near, far = _project(1000, 800, cx=200), _project(3000, 800, cx=450)
    out = ann.annotate(np.zeros((480, 640, 3), np.uint8), _faces([far, near]))
    assert np.isnan(out.distance_m).all()
    assert list(OnlyBeyond(2.0).decide(out).decision) == [ANONYMIZE, ANONYMIZE]
    assert list(KeepNearest(1).decide(out).decision) == [ANONYMIZE, KEEP]


# ----------------------------------------------------------------------------- hysteresis

def test_track_smoothing_and_hysteresis_do_not_flicker():
    ann, rule = DistanceAnnotator(focal_px=800, smooth_frames=5), OnlyBeyond(3.0, margin=0.1)
    frame = np.zeros((480, 640, 3), np.uint8)
    rng = np.random.default_rng(0)
    decisions = []
    for z in [2000] * 5 + list(2850 + rng.normal(0, 100, 30)):  # walks to just below 3 m, noisy
        faces = _faces([_project(z, 800)], track_ids=[7])
        decisions.append(rule.decide(ann.annotate(frame, faces)).decision[0])
    flips = sum(a != b for a, b in zip(decisions, decisions[1:]))
    assert decisions[0] == KEEP and flips <= 1
    # landmarks lost for a frame: the track carries its distance, and says so
    out = ann.annotate(frame, _faces([np.full((5, 2), np.nan)], track_ids=[7]))
    assert np.isfinite(out.distance_m[0]) and out.data["distance_source"][0] == "landmarks+track"
    ann.reset()
    out = ann.annotate(frame, _faces([np.full((5, 2), np.nan)], track_ids=[7]))
    assert np.isnan(out.distance_m[0])


def test_keep_nearest_needs_a_clear_margin_to_switch():
    rule = KeepNearest(1, margin=0.1)
    def step(d1, d2):
        f = Faces(xyxy=np.zeros((2, 4)), scores=np.ones(2), track_id=[1, 2], distance_m=[d1, d2],
                  data={"distance_key": np.array([d1, d2], np.float32)})
        return list(rule.decide(f).decision)
    assert step(1.0, 1.2) == [KEEP, ANONYMIZE]
    assert step(1.05, 1.0) == [KEEP, ANONYMIZE]  # 5 % nearer is not enough
    assert step(1.3, 1.0) == [ANONYMIZE, KEEP]


# ----------------------------------------------------------------------------- real scenes

def _composite(astronaut, grace_hopper):
    """Two real photos pasted at the scales of a 63 mm eye distance seen at 1.2 m and 4.0 m
    through a 1000 px focal length (scale from each photo's detected eye distance)."""
    from veil.api import Anonymizer

    det = Anonymizer()
    canvas = np.full((900, 1600, 3), 128, np.uint8)
    canvas[:] = cv2.resize(cv2.GaussianBlur(astronaut, (0, 0), 15), (1600, 900))  # a real, defocused background
    placed = []
    for img, z_m, (x0, y0) in ((grace_hopper, 1.2, (150, 150)), (astronaut, 4.0, (1100, 300))):
        lm = det.detect(img).landmarks[0]
        iod = float(np.linalg.norm(lm[0] - lm[1]))
        k = (F_COMPOSITE * 63.0 / (z_m * 1000.0)) / iod
        small = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        canvas[y0:y0 + h, x0:x0 + w] = small
        placed.append((x0, z_m))
    return canvas, placed


def test_two_people_at_different_distances(tmp_path, astronaut, grace_hopper):
    from veil.api import Anonymizer

    scene, placed = _composite(astronaut, grace_hopper)
    for kw, expect in (({"only_beyond": 2.5, "focal_px": F_COMPOSITE}, [KEEP, ANONYMIZE]),
                       ({"keep_nearest": 1}, [KEEP, ANONYMIZE])):
        res = Anonymizer(**kw).frame(scene)
        order = np.argsort(res.faces.xyxy[:, 0])
        assert len(res.faces) == 2
        assert list(res.faces.decision[order]) == expect, res.faces.reason
        if "focal_px" in kw:
            got = res.faces.distance_m[order]
            assert got == pytest.approx([1.2, 4.0], rel=0.2)
    # the CLI on a file: report has distances and their source
    from veil.cli.main import main

    src = tmp_path / "scene.png"
    cv2.imwrite(str(src), scene[..., ::-1])
    report = tmp_path / "r.json"
    with pytest.raises(SystemExit) as e:
        main([ "anonymize", str(src), "-o", str(tmp_path / "out.png"), "--only-beyond", "2.5",
              "--focal-px", str(F_COMPOSITE), "--report", str(report), "-q"])
    assert e.value.code in (0, None)
    faces = json.loads(report.read_text())["items"][0]["frames"][0]["faces"]
    faces.sort(key=lambda f: f["box"][0])
    assert [f["anonymized"] for f in faces] == [False, True]
    assert all(f["distance_source"] == "landmarks" and f["distance_m"] > 0 for f in faces)


KINECT = "depth/kinect_person"


def _kinect_frames(data_dir):
    folder = require(data_dir / KINECT, KINECT)
    return folder, sorted(p for p in folder.glob("*.jpg") if "_" not in p.stem)


def test_kinect_landmark_distance_within_10_percent_of_sensor(data_dir):
    from veil.api import Anonymizer

    folder, frames = _kinect_frames(data_dir)
    anon = Anonymizer(focal_px=525.0, estimate=True, tracking=False)
    sensor = RGBDFrames(folder)
    errors = []
    for i, path in enumerate(frames):
        rgb = cv2.imread(str(path))[..., ::-1].copy()
        faces = anon.frame(rgb).faces
        ok = np.isfinite(faces.distance_m)
        if not ok.any():
            continue
        from veil.depth import face_depths

        truth = face_depths(sensor.depth(rgb, i), faces.xyxy, rgb.shape[:2])
        for d, t in zip(faces.distance_m[ok], truth[ok]):
            if np.isfinite(t):
                errors.append(abs(d - t) / t)
    assert len(errors) >= 10
    assert float(np.median(errors)) < 0.10


# ----------------------------------------------------------------------------- RGB-D frames

def _write_depth(folder: Path, name: str, mm: np.ndarray) -> None:
    cv2.imwrite(str(folder / name), mm.astype(np.uint16))


def test_rgbd_frames_give_sensor_distance_and_clear_errors(tmp_path, caplog):
    frame = np.zeros((480, 640, 3), np.uint8)
    mm = np.full((480, 640), 2600, np.uint16)
    mm[100:300, 200:400] = 850
    _write_depth(tmp_path, "0000_depth.png", mm)
    _write_depth(tmp_path, "0001_depth.png", cv2.resize(mm, (320, 240), interpolation=cv2.INTER_NEAREST))
    _write_depth(tmp_path, "0002_depth.png", np.zeros((100, 300), np.uint16))
    ann = DistanceAnnotator(focal_px=525, backend=RGBDFrames(tmp_path))
    faces = Faces(xyxy=[[250, 150, 350, 250], [500, 50, 560, 120]], scores=[0.9, 0.9])  # no landmarks
    out = ann.annotate(frame, faces)
    assert out.distance_m == pytest.approx([0.85, 2.6])
    assert list(out.data["distance_source"]) == ["rgbd", "rgbd"]
    out = ann.annotate(frame, faces)  # half resolution, same aspect ratio: scaled
    assert out.distance_m == pytest.approx([0.85, 2.6])
    with pytest.raises(InputError, match="aspect ratio"):
        ann.annotate(frame, faces)
    out = ann.annotate(frame, faces)  # no 4th depth frame: warning, landmarks (none here) -> unknown
    assert np.isnan(out.distance_m).all() and "no depth frame" in caplog.text
    from veil.errors import ConfigError

    with pytest.raises(ConfigError, match="folder not found"):
        RGBDFrames(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no depth frames"):
        RGBDFrames(tmp_path / "empty")


# ----------------------------------------------------------------------------- ONNX mono depth

def _tiny_depth_onnx(path: Path, in_channels: int = 3) -> Path:
    """A tiny ONNX graph built here (not a real model): inverse depth = 10 + mean over the
    normalised channels, so brighter pixels are 'nearer'. Output (1, H, W)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, in_channels, "h", "w"])
    y = helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, "h", "w"])
    ten = helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
             helper.make_node("Add", ["m", "ten"], ["depth"])]
    graph = helper.make_graph(nodes, "tiny_depth", [x], [y], initializer=[ten, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_mono_depth_plumbing_with_tiny_onnx_graph_built_in_test(tmp_path):
    from veil.depth import OnnxMonoDepth

    model = OnnxMonoDepth(_tiny_depth_onnx(tmp_path / "tiny.onnx"), kind="midas", side=64)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :320] = 200  # left half bright = near (large inverse depth)
    frame[:, 320:] = 40

    def inv(p):
        return 10 + np.mean((p / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]))

    ann = DistanceAnnotator(focal_px=800, backend=model, every=3)
    anchor = _project(1000, 800, cx=160)  # landmark face on the left at 1.0 m
    faces = Faces(xyxy=[[120, 200, 200, 300], [440, 200, 520, 300]], scores=[0.9, 0.9],
                  landmarks=np.stack([anchor, np.full((5, 2), np.nan, np.float32)]))
    out = ann.annotate(frame, faces)
    # scale-only fit on the one anchor: Z = Z_anchor * v_anchor / v
    expect = out.distance_m[0] * inv(200) / inv(40)
    assert out.distance_m[1] == pytest.approx(expect, rel=0.03)
    assert list(out.data["distance_source"]) == ["landmarks", "mono-depth"]
    for _ in range(3):
        ann.annotate(frame, faces)
    assert ann.dense_runs == 2  # every 3rd frame
    with pytest.raises(ModelError, match=r"\(1, 3, H, W\)"):
        OnnxMonoDepth(_tiny_depth_onnx(tmp_path / "bad.onnx", in_channels=1))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxMonoDepth(tmp_path / "junk.onnx")


def test_background_blur_beyond_depth():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    depth = np.full((60, 80), 5.0, np.float32)
    depth[:, :40] = 1.0  # left half near (low-resolution map)
    out = blur_beyond(frame, depth, 3.0)
    assert np.array_equal(out[:, :80], frame[:, :80])
    assert out[:, 80:].std() < frame[:, 80:].std() / 3


def test_background_beyond_needs_dense_depth():
    from veil.api import Anonymizer
    from veil.errors import ConfigError

    with pytest.raises(ConfigError, match="dense depth"):
        Anonymizer(background_beyond=3.0)


# ----------------------------------------------------------------------------- models fetch

@pytest.fixture()
def http_folder(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_models_fetch_verifies_sha256_and_installs_atomically(http_folder, tmp_path, monkeypatch):
    import hashlib

    from veil.cli.main import main
    from veil.depth.models import fetch_model

    root, base = http_folder
    payload = b"pretend onnx bytes" * 1000
    (root / "m.onnx").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "models"
    path = fetch_model("midas-small", url=f"{base}/m.onnx", sha256=digest, dest_dir=dest)
    assert path.read_bytes() == payload and path.name == "midas_v21_small_256.onnx"
    with pytest.raises(ModelError, match="checksum mismatch"):
        fetch_model("other", url=f"{base}/m.onnx", sha256="0" * 64, dest_dir=dest)
    assert sorted(p.name for p in dest.iterdir()) == ["midas_v21_small_256.onnx"]  # nothing else left
    with pytest.raises(ModelError, match="no pinned sha256"):
        fetch_model("depth-anything-v2-small", dest_dir=dest)
    with pytest.raises(ModelError, match="checksum mismatch"):  # midas-small's pinned sha256 applies
        fetch_model("midas-small", url=f"{base}/m.onnx", dest_dir=tmp_path / "pinned")
    with pytest.raises(ModelError, match="HTTP 404"):
        fetch_model("x", url=f"{base}/missing.onnx", sha256=digest, dest_dir=dest)
    # offline / unreachable: one line, exit code 5 from the CLI
    monkeypatch.setenv("VEIL_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as e:
        main(["models", "fetch", "midas-small", "--url", "http://127.0.0.1:9/m.onnx", "--sha256", digest])
    assert e.value.code == 5
