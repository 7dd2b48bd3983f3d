"""Test-time augmentation (flip, scales) and the low-light pass around the real CenterFace.

Nothing here is mocked: every detection runs the shipped ONNX model on scikit-image's
astronaut or matplotlib's Grace Hopper, darkened with the same sensor simulation that
``veil eval conditions`` uses, or shrunk and pasted into a larger canvas.
"""

from __future__ import annotations

import cv2
import numpy as np
import pydantic
import pytest

from veil.api import Anonymizer
from veil.config import DetectConfig
from veil.detect import GridDetector, build_detector
from veil.detect.augment import AugmentedDetector, mirror, turn_frame, unturn
from veil.detect.lowlight import LowLight
from veil.errors import ConfigError
from veil.eval.conditions import dark, render
from veil.faces import Faces
from veil.models import MODELS

THR = 0.2  # the default operating threshold
LUMA = np.array([0.299, 0.587, 0.114])


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def max_pairwise_iou(faces: Faces) -> float:
    b = faces.xyxy
    return max((iou(b[i], b[j]) for i in range(len(b)) for j in range(i + 1, len(b))), default=0.0)


def to_linear(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


@pytest.fixture(scope="module")
def native() -> GridDetector:
    return build_detector(DetectConfig(max_side=0, low_light=False))


@pytest.fixture(scope="module")
def clean_box(native, astronaut) -> np.ndarray:
    faces = native.detect([astronaut], 0.5)[0]
    assert len(faces) == 1
    return faces.xyxy[0]


# -- mirror ----------------------------------------------------------------------------
def synthetic_faces() -> Faces:
    rng = np.random.default_rng(7)
    x0 = rng.uniform(0, 300, 3)
    y0 = rng.uniform(0, 200, 3)
    xyxy = np.stack([x0, y0, x0 + rng.uniform(10, 90, 3), y0 + rng.uniform(10, 90, 3)], 1)
    lm = rng.uniform(0, 400, (3, 5, 2))
    return Faces(xyxy=xyxy, scores=[0.9, 0.5, 0.3], landmarks=lm, track_id=[4, 5, 6])


def test_mirror_twice_is_identity():
    f = synthetic_faces()
    back = mirror(mirror(f, 400), 400)
    np.testing.assert_allclose(back.xyxy, f.xyxy, atol=1e-4)
    np.testing.assert_allclose(back.landmarks, f.landmarks, atol=1e-4)
    np.testing.assert_array_equal(back.scores, f.scores)
    np.testing.assert_array_equal(back.track_id, f.track_id)


def test_mirror_maps_x_and_swaps_left_right_landmarks():
    f = synthetic_faces()
    w = 400
    m = mirror(f, w)
    # boxes: x -> w - x, and the corners swap so that x1 < x2 still holds
    np.testing.assert_allclose(m.xyxy[:, 0], w - f.xyxy[:, 2], atol=1e-4)
    np.testing.assert_allclose(m.xyxy[:, 2], w - f.xyxy[:, 0], atol=1e-4)
    np.testing.assert_allclose(m.xyxy[:, [1, 3]], f.xyxy[:, [1, 3]])
    assert (m.xyxy[:, 2] > m.xyxy[:, 0]).all()
    # landmarks: eyes and mouth corners swap order, the nose stays; x -> w - x, y unchanged
    order = [1, 0, 2, 4, 3]
    np.testing.assert_allclose(m.landmarks[..., 0], w - f.landmarks[:, order, 0], atol=1e-4)
    np.testing.assert_allclose(m.landmarks[..., 1], f.landmarks[:, order, 1])
    # the input is not modified
    np.testing.assert_array_equal(f.xyxy, synthetic_faces().xyxy)


def test_mirror_of_a_flipped_detection_matches_the_plain_one(native, astronaut):
    """The real detector on the mirrored photo, mapped back: same box, same landmark order."""
    w = astronaut.shape[1]
    plain = native.detect([astronaut], 0.5)[0]
    flipped = native.detect([np.ascontiguousarray(astronaut[:, ::-1])], 0.5)[0]
    assert len(plain) == len(flipped) == 1
    back = mirror(flipped, w)
    assert iou(back.xyxy[0], plain.xyxy[0]) > 0.85
    # each landmark lands on its counterpart (a wrong swap would be off by the eye distance)
    eye_dist = float(np.linalg.norm(plain.landmarks[0, 0] - plain.landmarks[0, 1]))
    err = np.linalg.norm(back.landmarks[0] - plain.landmarks[0], axis=1)
    assert err.max() < 0.25 * eye_dist, (err, eye_dist)


# -- flip ------------------------------------------------------------------------------
def test_flip_pass_finds_the_face_and_merges_with_nms(native, astronaut, clean_box):
    aug = AugmentedDetector(native, flip=True)
    low = 0.02  # low enough that the passes return overlapping candidates to merge
    faces = aug.detect([astronaut], low)[0]
    assert aug.pass_counts == {"flip": 1}
    plain = native.detect([astronaut], low)[0]
    flipped = mirror(native.detect([np.ascontiguousarray(astronaut[:, ::-1])], low)[0], astronaut.shape[1])
    assert len(plain) and len(flipped)
    # the face is found, above the operating threshold
    top = faces[faces.scores >= THR]
    assert any(iou(b, clean_box) > 0.7 for b in top.xyxy)
    # merged by the base's NMS: no two boxes overlap more than nms_iou
    assert max_pairwise_iou(faces) <= native.nms_iou + 1e-6
    # passes only add faces: every plain detection is covered by a merged one at least as confident
    for b, s in zip(plain.xyxy, plain.scores):
        assert any(iou(b, m) > native.nms_iou and ms >= s - 1e-6 for m, ms in zip(faces.xyxy, faces.scores))
    # ... and no more faces than the two passes gave together
    assert len(faces) <= len(plain) + len(flipped)
    # boxes stay inside the frame
    h, w = astronaut.shape[:2]
    assert (faces.xyxy[:, [0, 2]] >= 0).all() and (faces.xyxy[:, [0, 2]] <= w).all()
    assert (faces.xyxy[:, [1, 3]] >= 0).all() and (faces.xyxy[:, [1, 3]] <= h).all()
    aug.detect([astronaut, astronaut], THR)
    assert aug.pass_counts == {"flip": 3}


# -- rotations (faces lying on their side in the scene) --------------------------------
@pytest.mark.parametrize("deg", [90, 180, 270])
def test_unturn_maps_boxes_and_landmarks_back(deg):
    f = synthetic_faces()
    w, h = 400, 300
    pts = np.concatenate([f.xyxy.reshape(-1, 2), f.landmarks.reshape(-1, 2)])
    # where each point lands in the turned frame: turn a one-pixel marker with the frame
    turned_pts = []
    for x, y in pts.astype(int) % [w, h]:
        img = np.zeros((h, w), np.uint8)
        img[y, x] = 1
        ty, tx = np.argwhere(turn_frame(img, deg))[0]
        turned_pts.append((tx, ty))
    turned_pts = np.array(turned_pts, float)
    n = len(f) * 2
    corners = turned_pts[:n].reshape(-1, 2, 2)
    turned = f.with_columns(xyxy=np.concatenate([corners.min(1), corners.max(1)], 1),
                            landmarks=turned_pts[n:].reshape(-1, 5, 2))
    back = unturn(turned, deg, w, h)
    # pixel indices vs continuous coordinates: within one pixel
    px = pts.astype(int) % [w, h]
    corners_back = px[:n].reshape(-1, 2, 2)
    assert np.abs(back.xyxy - np.concatenate([corners_back.min(1), corners_back.max(1)], 1)).max() <= 1
    assert np.abs(back.landmarks - px[n:].reshape(-1, 5, 2)).max() <= 1


@pytest.mark.parametrize("deg", [90, 180])
def test_rotated_pass_finds_a_face_lying_on_its_side(native, grace_hopper, deg):
    """Grace Hopper turned as if lying down (or upside down): the plain pass is unsure of her
    face, the pass that turns the frame back finds it as surely as upright, in the lying
    frame's pixels."""
    upright = native.detect([grace_hopper], 0.5)[0]
    assert len(upright) == 1
    lying = turn_frame(grace_hopper, deg)
    h, w = lying.shape[:2]
    # where the face is in the lying frame: the upright box turned with the frame
    H, W = grace_hopper.shape[:2]
    x0, y0, x1, y1 = upright.xyxy[0]
    want = np.array([H - y1, x0, H - y0, x1]) if deg == 90 else np.array([W - x1, H - y1, W - x0, H - y0])

    def best(faces):
        return max((s for b, s in zip(faces.xyxy, faces.scores) if iou(b, want) > 0.7), default=0.0)

    plain = best(native.detect([lying], 0.02)[0])
    aug = AugmentedDetector(native, rotations=(90, 180, 270))
    faces = aug.detect([lying], 0.02)[0]
    assert aug.pass_counts == {"rotated 90": 1, "rotated 180": 1, "rotated 270": 1}
    turned = best(faces)
    assert turned >= upright.scores[0] - 0.02 and turned > plain + 0.2, (plain, turned)
    assert max_pairwise_iou(faces) <= native.nms_iou + 1e-6
    assert (faces.xyxy[:, [0, 2]] <= w).all() and (faces.xyxy[:, [1, 3]] <= h).all()


@pytest.mark.parametrize("rotations", [(45,), (90, 90), (0,)])
def test_rotations_other_than_right_angles_are_rejected(rotations):
    with pytest.raises(pydantic.ValidationError, match="rotations"):
        DetectConfig(rotations=rotations)


def test_rotations_flag_builds_the_pass(tmp_path, astronaut):
    from typer.testing import CliRunner

    from veil.cli.main import app

    anon = Anonymizer(rotations=(90, 270))
    assert isinstance(anon.pipeline.detector, AugmentedDetector) and anon.pipeline.detector.rotations == (90, 270)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(turn_frame(astronaut, 270), cv2.COLOR_RGB2BGR))
    res = CliRunner().invoke(app, ["anonymize", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"),
                                   "--rotations", "90,270", "--report", str(tmp_path / "r.json"), "-q"])
    assert res.exit_code == 0, res.output
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["manifest"]["settings"]["detect"]["rotations"] == [90, 270]
    assert sum(f["anonymized"] for f in rep["items"][0]["frames"][0]["faces"]) >= 1
    bad = CliRunner().invoke(app, ["anonymize", str(tmp_path / "a.png"), "-o", str(tmp_path / "p.png"), "--rotations", "x"])
    assert bad.exit_code == 2 and "--rotations" in bad.output


# -- scales ----------------------------------------------------------------------------
def tiny_face_frame(photo: np.ndarray, face_px: float, photo_face_w: float, canvas: int = 256):
    """``photo`` shrunk so that its face is ``face_px`` wide, pasted in a grey canvas."""
    s = face_px / photo_face_w
    h, w = photo.shape[:2]
    small = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    out = np.full((canvas, canvas, 3), 128, np.uint8)
    y0, x0 = (canvas - small.shape[0]) // 2, (canvas - small.shape[1]) // 2
    out[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return out, s, (x0, y0)


def test_upscaled_pass_finds_a_face_too_small_for_the_plain_pass(native, grace_hopper):
    clean = native.detect([grace_hopper], 0.5)[0]
    assert len(clean) == 1
    face_w = float(clean.wh[0, 0])
    # Grace Hopper's face ~8 px wide: below what the plain pass finds at the operating threshold
    frame, s, (x0, y0) = tiny_face_frame(grace_hopper, 8.0, face_w)
    where = clean.xyxy[0] * s + [x0, y0, x0, y0]
    plain = native.detect([frame], THR)[0]
    assert not any(iou(b, where) > 0.3 for b in plain.xyxy), "the plain pass should miss the tiny face"
    for scale in (2.0, 3.0):
        aug = AugmentedDetector(native, scales=(scale,))
        found = aug.detect([frame], THR)[0]
        assert aug.pass_counts == {f"scale {scale:g}": 1}
        hits = [b for b in found.xyxy if iou(b, where) > 0.3]
        assert hits, f"scale {scale} should find the tiny face"
        # boxes come back in the frame's pixels, not the upscaled image's
        assert found.xyxy.max() <= frame.shape[1]
    # the same through the config
    det = build_detector(DetectConfig(max_side=0, scales=(2.0,), low_light=False))
    assert isinstance(det, AugmentedDetector) and det.scales == (2.0,)
    assert any(iou(b, where) > 0.3 for b in det.detect([frame], THR)[0].xyxy)


def test_detect_at_scale_one_is_the_native_run(astronaut):
    det = build_detector(DetectConfig(max_side=256, low_light=False))  # detect_at ignores max_side
    a = det.detect_at(astronaut, 1.0, 0.05)
    b = det._run([astronaut], 0.05)[0]
    assert len(a) == len(b) >= 1
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)


def test_detect_at_maps_back_to_frame_pixels(native, astronaut, clean_box):
    for scale in (0.5, 2.0):
        faces = native.detect_at(astronaut, scale, 0.5)
        assert any(iou(b, clean_box) > 0.7 for b in faces.xyxy), scale
    # a transform runs on the resized image before detection
    seen = []
    native.detect_at(astronaut, 0.5, 0.5, lambda im: seen.append(im.shape) or im)
    assert seen == [(256, 256, 3)]


# -- low light -------------------------------------------------------------------------
def test_is_dark(astronaut, grace_hopper):
    ll = LowLight()
    assert not ll.is_dark(astronaut)
    assert not ll.is_dark(grace_hopper)
    assert ll.is_dark(dark(astronaut, np.random.default_rng(0)))
    assert ll.is_dark(dark(grace_hopper, np.random.default_rng(0)))
    # the level is the switch: a high enough level calls the plain photo dark
    assert LowLight(level=250.0).is_dark(astronaut)


def test_bright_end_leaves_a_dark_frame_with_lights_in_view_alone(astronaut):
    """Off by default (mean only); with ``bright_end`` a night scene or a stage -- dark on
    average, exposed for its lights -- does not get the pass."""
    frame = dark(astronaut, np.random.default_rng(0))
    lit = frame.copy()
    lit[:100, :100] = 255  # a lamp: 3.8 % of the frame
    assert float(lit.mean()) < 50  # still dark on average
    assert LowLight().is_dark(lit)  # the default: mean only
    assert LowLight(bright_end=100.0).is_dark(frame)  # under-exposed: still dark
    assert not LowLight(bright_end=100.0).is_dark(lit)


def test_enhance_brings_a_dark_frame_to_mid_grey(astronaut):
    ll = LowLight()
    # a flat dark grey: the result is the 18 % grey card, sRGB ~118
    flat = np.full((64, 80, 3), 20, np.uint8)
    out = ll.enhance(flat)
    assert out.shape == flat.shape and out.dtype == np.uint8
    assert 105 <= float(out.mean()) <= 130
    # a darkened photo (gain not capped): its mean in linear light is brought to ~0.18
    d = render(astronaut, "x", "dark", 0.05)
    assert float((d @ LUMA).mean()) < 30
    e = ll.enhance(d)
    assert e.shape == d.shape and e.dtype == np.uint8
    assert 0.12 <= float(to_linear(e).mean()) <= 0.25
    assert 70 <= float((e @ LUMA).mean()) <= 150  # sRGB mean of a varied image sits below 118
    assert float((e @ LUMA).mean()) > 3 * float((d @ LUMA).mean())
    # the gain is capped: a nearly black frame is brightened, but by at most max_gain
    black = render(astronaut, "x", "dark", 0.001)
    eb = LowLight(sigma=0).enhance(black)
    ratio = to_linear(eb).mean() / max(to_linear(black).mean(), 1e-9)
    assert 5 < ratio <= 40 * 1.05


@pytest.mark.parametrize("photo, gain", [("astronaut", 0.002), ("grace_hopper", 0.0015)])
def test_low_light_pass_finds_a_face_in_the_dark(photo, gain, request):
    rgb = request.getfixturevalue(photo)
    plain = build_detector(DetectConfig(low_light=False))
    det = build_detector(DetectConfig(low_light=True))
    assert isinstance(det, AugmentedDetector) and det.low_light is not None
    (where,) = plain.detect([rgb], 0.5)[0].xyxy
    d = render(rgb, "x", "dark", gain)
    missed = plain.detect([d], THR)[0]
    assert not any(iou(b, where) > 0.5 for b in missed.xyxy), "the plain pass should miss the dark face"
    found = det.detect([d], THR)[0]
    assert any(iou(b, where) > 0.5 for b in found.xyxy)
    assert det.pass_counts == {"low light": 1}


def test_bright_frame_skips_the_low_light_pass(astronaut, clean_box):
    det = build_detector(DetectConfig(max_side=0, low_light=True))
    faces = det.detect([astronaut], THR)[0]
    assert "low light" not in det.pass_counts
    assert len(faces) == 1 and iou(faces.xyxy[0], clean_box) > 0.99


# -- config ----------------------------------------------------------------------------
@pytest.mark.parametrize("scales", [(5.0,), (0.05,), (2.0, 4.5)])
def test_scales_out_of_range_are_rejected(scales):
    with pytest.raises(pydantic.ValidationError, match="scales"):
        DetectConfig(scales=scales)
    with pytest.raises(ConfigError, match="scales"):
        Anonymizer(scales=scales)


def test_plain_config_builds_a_plain_detector():
    det = build_detector(DetectConfig(scales=(0.1, 4.0), low_light=False))
    assert isinstance(det, AugmentedDetector) and det.scales == (0.1, 4.0) and not det.flip and det.low_light is None
    assert not isinstance(build_detector(DetectConfig(low_light=False)), AugmentedDetector)
    # the default has the low-light pass (free on normal frames) and nothing else
    default = build_detector(DetectConfig())
    assert isinstance(default, AugmentedDetector) and default.low_light is not None and not default.scales and not default.flip


def test_anonymizer_low_light_override(astronaut):
    anon = Anonymizer(low_light=True)
    assert anon.config.detect.low_light is True
    det = anon.pipeline.detector
    assert isinstance(det, AugmentedDetector)
    assert det.model_sha256 == det.base.model_sha256 == MODELS["centerface"].sha256
    assert det.name == det.base.name == "centerface"
    # attributes of the base are forwarded
    assert det.provider == det.base.provider and det.provider.endswith("ExecutionProvider")
    assert det.precision == "fp32" and det.nms_iou == det.base.nms_iou
    assert anon.model_info["sha256"] == MODELS["centerface"].sha256
    assert anon.model_info["provider"] == det.base.provider
    faces = anon.detect(astronaut)
    assert len(faces) == 1
    with pytest.raises(AttributeError):
        det.no_such_attribute  # noqa: B018
