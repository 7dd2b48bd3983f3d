"""The YuNet-n detector on real photos (never mocked), its decode checked against OpenCV's."""

import cv2
import numpy as np
import pytest

from veil.config import DetectConfig
from veil.detect import DETECTORS, Detector, YuNet, build_detector
from veil.io.wider_format import read_wider_gt
from veil.models import MODELS, resolve_model

PARADE = "0--Parade/0_Parade_Parade_0_194.jpg"  # five large faces in a row


@pytest.fixture(scope="module")
def yunet():
    return build_detector(DetectConfig(detector="yunet", max_side=0, low_light=False))


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


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
def test_one_face_with_landmarks_inside(yunet, photo, request):
    img = request.getfixturevalue(photo)
    faces = yunet.detect([img], 0.5)[0]
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.xyxy[0]
    assert 40 < x2 - x1 < 300 and faces.scores[0] > 0.8
    lm = faces.landmarks[0]
    assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
    # eyes above the mouth, right eye (image left) left of left eye: CenterFace's order
    assert lm[0, 0] < lm[1, 0] and lm[:2, 1].max() < lm[3:, 1].min()


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_same_face_as_centerface(yunet, photo, request):
    img = request.getfixturevalue(photo)
    ours = yunet.detect([img], 0.5)[0]
    cf = build_detector(DetectConfig(max_side=0, low_light=False)).detect([img], 0.5)[0]
    assert len(ours) == len(cf) == 1
    assert iou(ours.xyxy[0], cf.xyxy[0]) > 0.5


def test_decode_matches_opencv(yunet, astronaut):
    """Boxes, landmarks and scores equal OpenCV FaceDetectorYN's on the same file and frame
    (sides multiples of 32, so both run the same input; OpenCV decodes in C++)."""
    ref = opencv_yunet(astronaut, 0.3, 0.3)
    got = yunet.detect([astronaut], 0.3)[0]
    assert len(got) == len(ref) >= 1
    order = np.argsort(-ref[:, 14])
    ref = ref[order]
    xywh = np.c_[got.xyxy[:, :2], got.xyxy[:, 2:] - got.xyxy[:, :2]]
    np.testing.assert_allclose(xywh, ref[:, :4], atol=0.05)
    np.testing.assert_allclose(got.landmarks.reshape(-1, 10), ref[:, 4:14], atol=0.05)
    np.testing.assert_allclose(got.scores, ref[:, 14], atol=1e-4)


def test_wider_photo_several_faces(yunet, wider_dev):
    """A WIDER dev photo: every annotated face found (IoU >= 0.5) and the same boxes as OpenCV."""
    gt = read_wider_gt(wider_dev / "wider_dev_bbx_gt.txt")[PARADE]
    rgb = cv2.cvtColor(cv2.imread(str(wider_dev / "images" / PARADE)), cv2.COLOR_BGR2RGB)
    faces = yunet.detect([rgb], 0.5)[0]
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


def test_cli_accepts_detector(tmp_path, astronaut):
    from PIL import Image

    from veil.cli.main import app
    from typer.testing import CliRunner

    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(app, ["anonymize", str(src), "-o", str(out), "--detector", "yunet", "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    face = np.asarray(Image.open(out))[80:170, 190:260].astype(int)
    assert np.abs(face - astronaut[80:170, 190:260]).mean() > 10  # the face was anonymized
    assert '"yunet"' in (tmp_path / "r.json").read_text()
