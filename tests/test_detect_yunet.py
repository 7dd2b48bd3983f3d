"""The YuNet-n detector and the yunet+centerface cascade on real photos (never mocked); YuNet's
decode checked against OpenCV's."""

import cv2
import numpy as np
import pytest

from veil.config import DetectConfig
from veil.detect import DETECTORS, Detector, MergedDetector, YuNet, build_detector
from veil.detect.yunet import SCORE_POWER
from veil.errors import ConfigError
from veil.io.wider_format import read_wider_gt
from veil.models import MODELS, resolve_model

from test_detect import iou, small_faces_scene  # tests/ is on sys.path (as for wider_helpers)

PARADE = "0--Parade/0_Parade_Parade_0_194.jpg"  # five large faces in a row


@pytest.fixture(scope="module")
def yunet():
    return build_detector(DetectConfig(detector="yunet", max_side=0, low_light=False))


def opencv_yunet(rgb: np.ndarray, score: float, nms: float) -> np.ndarray:
    """OpenCV's own YuNet decoding of the same file: rows of box (x, y, w, h), 5 points, score."""
    path, _ = resolve_model("yunet")
    h, w = rgb.shape[:2]
    det = cv2.FaceDetectorYN.create(str(path), "", (w, h), score, nms, 5000)
    _, found = det.detect(np.ascontiguousarray(rgb[..., ::-1]))
    return np.zeros((0, 15), np.float32) if found is None else found


def test_registered_and_verified(yunet):
    assert DETECTORS["yunet"] is YuNet
    assert isinstance(yunet, Detector) and isinstance(yunet, YuNet)
    assert yunet.name == "yunet"
    assert yunet.model_sha256 == MODELS["yunet"].sha256


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_same_face_as_centerface(yunet, photo, request):
    img = request.getfixturevalue(photo)
    ours = yunet.detect([img], 0.5)[0]
    cf = build_detector(DetectConfig(max_side=0, low_light=False)).detect([img], 0.5)[0]
    assert len(ours) == len(cf) == 1
    assert iou(ours.xyxy[0], cf.xyxy[0]) > 0.5


def test_decode_matches_opencv(yunet, astronaut):
    """Boxes, landmarks and scores equal OpenCV FaceDetectorYN's on the same file and frame
    (sides multiples of 32, so both run the same input; OpenCV decodes in C++). veil's
    score is OpenCV's to the power SCORE_POWER."""
    ref = opencv_yunet(astronaut, 0.3, 0.3)
    got = yunet.detect([astronaut], 0.3 ** SCORE_POWER)[0]
    assert len(got) == len(ref) >= 1
    order = np.argsort(-ref[:, 14])
    ref = ref[order]
    xywh = np.c_[got.xyxy[:, :2], got.xyxy[:, 2:] - got.xyxy[:, :2]]
    np.testing.assert_allclose(xywh, ref[:, :4], atol=0.05)
    np.testing.assert_allclose(got.landmarks.reshape(-1, 10), ref[:, 4:14], atol=0.05)
    np.testing.assert_allclose(got.scores, ref[:, 14] ** SCORE_POWER, atol=1e-4)


def test_wider_photo_several_faces(yunet, wider_dev):
    """A WIDER dev photo: every annotated face found (IoU >= 0.5) and the same boxes as OpenCV."""
    gt = read_wider_gt(wider_dev / "wider_dev_bbx_gt.txt")[PARADE]
    rgb = cv2.cvtColor(cv2.imread(str(wider_dev / "images" / PARADE)), cv2.COLOR_BGR2RGB)
    faces = yunet.detect([rgb], 0.5 ** SCORE_POWER)[0]
    truth = np.c_[gt.boxes[:, :2], gt.boxes[:, :2] + gt.boxes[:, 2:]]
    assert len(truth) == 5
    for t in truth:
        assert max(iou(t, f) for f in faces.xyxy) >= 0.5
    # odd frame size (not a multiple of 32): veil pads, OpenCV pads too; same boxes
    ref = opencv_yunet(rgb, 0.5, 0.3)
    assert len(ref) == len(faces)
    for row in ref:
        box = [row[0], row[1], row[0] + row[2], row[1] + row[3]]
        assert max(iou(box, f) for f in faces.xyxy) > 0.99


def test_batch_equals_single(yunet, astronaut, grace_hopper):
    crop = np.ascontiguousarray(astronaut[:400, :400])
    frames = [astronaut, crop, grace_hopper, astronaut]
    batch = yunet.detect(frames, 0.3)
    singles = [yunet.detect([f], 0.3)[0] for f in frames]
    for b, s in zip(batch, singles):
        assert len(b) == len(s)
        np.testing.assert_allclose(b.xyxy, s.xyxy, atol=0.05)
        np.testing.assert_allclose(b.landmarks, s.landmarks, atol=0.05)


def test_downscaled_detection_and_rois_map_back(astronaut):
    big = cv2.resize(astronaut, (2048, 2048))
    det = build_detector(DetectConfig(detector="yunet", max_side=512, low_light=False))
    f = det.detect([big], 0.5)[0]
    ref = build_detector(DetectConfig(detector="yunet", max_side=0, low_light=False)).detect([astronaut], 0.5)[0]
    assert len(f) == 1
    assert iou(f.xyxy[0] / 4, ref.xyxy[0]) > 0.8
    # the detect-every-k building block: a window around the known face finds it again
    again = det.detect_rois(big, f.xyxy, 0.5)
    assert len(again) == 1 and iou(again.xyxy[0], f.xyxy[0]) > 0.7


@pytest.mark.parametrize("name", ["yunet", "yunet+centerface"])
def test_cli_accepts_detector(tmp_path, astronaut, name):
    from PIL import Image

    from veil.cli.main import app
    from typer.testing import CliRunner

    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(app, ["anonymize", str(src), "-o", str(out), "--detector", name, "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    face = np.asarray(Image.open(out))[80:170, 190:260].astype(int)
    assert np.abs(face - astronaut[80:170, 190:260]).mean() > 10  # the face was anonymized
    report = (tmp_path / "r.json").read_text()
    assert f'"{name}"' in report and MODELS["yunet"].sha256 in report


# -- yunet+centerface: both detectors on every frame, merged by NMS -------------------------

@pytest.fixture(scope="module")
def cascade():
    return build_detector(DetectConfig(detector="yunet+centerface", max_side=1280, low_light=False))


def test_cascade_is_the_nms_of_its_passes(cascade, astronaut):
    from veil.detect.nms import nms
    from veil.faces import Faces

    assert isinstance(cascade, MergedDetector) and isinstance(cascade, Detector)
    assert cascade.model_sha256 == f"{MODELS['yunet'].sha256}+{MODELS['centerface'].sha256}"
    yn, cf = cascade.passes
    assert (yn.name, yn.resolution.max_side, cf.name, cf.resolution.max_side) == ("yunet", 1280, "centerface", 640)
    big = cv2.resize(astronaut, (1600, 1600))
    parts = Faces.concatenate([yn.detect([big], 0.05)[0], cf.detect([big], 0.05)[0]])
    want = parts[nms(parts.xyxy, parts.scores, 0.3)]
    got = cascade.detect([big], 0.05)[0]
    np.testing.assert_allclose(got.xyxy, want.xyxy)
    assert len(cascade.detect([big], 0.5)[0]) == 1  # one face, found by both, kept once


def test_cascade_small_faces_come_from_the_lead_pass(cascade, astronaut):
    scene, n = small_faces_scene(astronaut)
    assert len(cascade.passes[1].detect([scene], 0.2)[0]) == 0  # CenterFace at 640 px sees none
    assert len(cascade.detect([scene], 0.2)[0]) == n


def test_cascade_native_and_rois(astronaut):
    det = build_detector(DetectConfig(detector="yunet+centerface", max_side=0, low_light=False))
    yn, cf = det.passes
    assert (yn.resolution.max_side, cf.resolution.max_side) == (0, 0)
    faces = det.detect([astronaut], 0.5)[0]  # CenterFace runs at half the native size
    assert len(faces) == 1
    again = det.detect_rois(astronaut, faces.xyxy, 0.5)
    assert len(again) == 1 and iou(again.xyxy[0], faces.xyxy[0]) > 0.7


def test_cascade_refuses_a_model_file(tmp_path):
    with pytest.raises(ConfigError, match="single detector"):
        build_detector(DetectConfig(detector="yunet+centerface", model_path=tmp_path / "x.onnx"))


def test_cascade_with_low_light_wrapper(grace_hopper):
    det = build_detector(DetectConfig(detector="yunet+centerface"))  # low-light pass on: wrapped
    dark = (grace_hopper.astype(np.float32) * 0.12).astype(np.uint8)
    found = det.detect([dark], 0.2)[0]
    assert len(found) >= 1 and det.pass_counts.get("low light") == 1


def test_cascade_in_a_detect_every_k_video_run(astronaut):
    """fast's detect-every-3 with windows between detections runs on the cascade (the windows
    on its CenterFace pass, veil.detect.merged.WINDOW_PASS): every frame of a moving face comes
    out with the face hidden."""
    from veil.config import preset
    from veil.pipeline import Pipeline

    cfg = preset("fast").updated(detect={"detector": "yunet+centerface", "max_side": 960})
    pipe = Pipeline(cfg)
    cascade = pipe.detector.base  # the low-light wrapper around the cascade
    assert cascade.window_pass == 1 and cascade.passes[1].name == "centerface"
    windows = []
    real = cascade.passes[1].detect_rois
    cascade.passes[1].detect_rois = lambda *a, **k: windows.append(1) or real(*a, **k)  # counted, still real
    canvas = np.full((540, 960, 3), 120, np.uint8)
    frames = []
    for k in range(9):
        f = canvas.copy()
        f[100:612 - 200, 100 + 12 * k:100 + 12 * k + 312] = astronaut[:312, 100:412]
        frames.append(f)
    out = list(pipe.run(frames, fps=25))
    assert len(out) == len(frames) and len(windows) == 6  # frames 1, 2, 4, 5, 7, 8
    for k, (src, res) in enumerate(zip(frames, out)):
        x = 100 + 12 * k + 90  # the face in the pasted crop: astronaut x 190-260, y 80-170
        face_src, face_out = src[180:270, x:x + 70].astype(int), res.frame[180:270, x:x + 70].astype(int)
        assert np.abs(face_out - face_src).mean() > 10, f"frame {k}: face not hidden"
