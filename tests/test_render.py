"""Filters on textured synthetic frames: pixels inside the mask change, outside do not."""

import numpy as np
import pytest

from veil.config import RenderConfig
from veil.errors import ConfigError
from veil.faces import KEEP, Faces
from veil.render import FILTERS, build_filter
from veil.render.colors import parse_color
from veil.render.mask import face_regions


@pytest.fixture
def texture():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)


BOX = [100.0, 60.0, 180.0, 160.0]  # 80 x 100 face


def faces(*boxes):
    return Faces(xyxy=list(boxes) or np.zeros((0, 4)), scores=[0.9] * len(boxes))


def changed(a, b):
    return (a != b).any(axis=2)


@pytest.mark.parametrize("name", ["blur", "pixelate", "solid"])
@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_anonymizing_filters_change_inside_only(texture, name, shape):
    flt = build_filter(RenderConfig(filter=name, shape=shape, mask_scale=1.3, head=False))
    out = flt.apply(texture, faces(BOX))
    diff = changed(out, texture)
    # the face box itself is (almost) entirely replaced
    inner = diff[60:160, 100:180]
    assert inner.mean() > 0.95
    # nothing outside the 1.3x mask box changes
    cx, cy, hw, hh = 140, 110, 40 * 1.3, 50 * 1.3
    outside = np.ones_like(diff)
    outside[int(cy - hh) - 1 : int(cy + hh) + 2, int(cx - hw) - 1 : int(cx + hw) + 2] = False
    assert not diff[outside].any()
    assert out.dtype == np.uint8 and out.shape == texture.shape
    assert not np.shares_memory(out, texture)


def test_ellipse_leaves_corners(texture):
    out = build_filter(RenderConfig(filter="solid", shape="ellipse", mask_scale=1.3, head=False)).apply(texture, faces(BOX))
    # corner of the mask box (outside the ellipse) is untouched, centre is black
    assert (out[60 - 14, 100 - 11] == texture[60 - 14, 100 - 11]).all()
    assert (out[110, 140] == 0).all()


def test_solid_colour(texture):
    out = build_filter(RenderConfig(filter="solid", color="#ff00ff")).apply(texture, faces(BOX))
    assert (out[110, 140] == [255, 0, 255]).all()


def test_blur_strength_is_relative_to_face_size():
    """A big face is blurred as much (relative to its size) as a small one."""
    rng = np.random.default_rng(1)
    small_tex = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    import cv2

    big_tex = cv2.resize(small_tex, (400, 400), interpolation=cv2.INTER_NEAREST)
    flt = build_filter(RenderConfig(filter="blur", shape="box", mask_scale=1.0))
    small = flt.apply(small_tex, faces([0, 0, 40, 40]))
    big = flt.apply(big_tex, faces([0, 0, 400, 400]))
    # after scaling the big result down, both keep the same (low) amount of detail
    big_down = cv2.resize(big, (40, 40), interpolation=cv2.INTER_AREA)
    assert abs(float(small.std()) - float(big_down.std())) < 0.35 * float(small_tex.std())
    assert big.std() < 0.35 * big_tex.std()


def test_pixelate_has_few_blocks_whatever_the_size():
    rng = np.random.default_rng(2)
    for size in (40, 400):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        out = build_filter(RenderConfig(filter="pixelate", shape="box", mask_scale=1.0)).apply(img, faces([0, 0, size, size]))
        colours = np.unique(out.reshape(-1, 3), axis=0)
        assert len(colours) <= 12 * 12, size


def test_keep_decision_is_respected(texture):
    f = faces(BOX).with_columns(decision=np.array([KEEP], object))
    out = build_filter(RenderConfig(filter="solid")).apply(texture, f)
    assert (out == texture).all()


def test_feather_only_adds_outside(texture):
    hard = build_filter(RenderConfig(filter="solid", shape="box")).apply(texture, faces(BOX))
    soft = build_filter(RenderConfig(filter="solid", shape="box", feather=0.2)).apply(texture, faces(BOX))
    core = changed(hard, texture)
    assert (soft[core] == 0).all()  # everything the hard mask hid is still fully hidden
    assert changed(soft, texture).sum() > core.sum()  # plus a soft rim


def test_faces_at_frame_border(texture):
    out = build_filter(RenderConfig(filter="blur")).apply(texture, faces([-30, -30, 40, 40], [300, 200, 400, 300]))
    assert changed(out, texture)[0:20, 0:20].mean() > 0.9
    assert changed(out, texture)[225:, 305:].mean() > 0.9


def test_image_filter_with_alpha(texture, tmp_path):
    from PIL import Image

    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = [255, 255, 0, 255]  # opaque yellow square, transparent border
    Image.fromarray(rgba).save(tmp_path / "emoji.png")
    flt = build_filter(RenderConfig(filter="image", image=tmp_path / "emoji.png", shape="box", mask_scale=1.0))
    out = flt.apply(texture, faces(BOX))
    assert (out[110, 140] == [255, 255, 0]).all()  # emoji centre
    assert (out[62, 102] == [0, 0, 0]).all()  # transparent part shows the solid colour, not the face


def test_image_filter_needs_image():
    with pytest.raises(ConfigError, match="image"):
        build_filter(RenderConfig(filter="image"))


def test_non_anonymizing_filters(texture):
    assert (FILTERS["none"]().apply(texture, faces(BOX)) == texture).all()
    dbg = FILTERS["debug"]().apply(texture, faces(BOX))
    assert changed(dbg, texture).sum() > 0 and changed(dbg, texture)[80:140, 120:160].mean() < 0.2


@pytest.mark.parametrize("text, rgb", [("#ff00ff", (255, 0, 255)), ("00ff00", (0, 255, 0)), ("#abc", (170, 187, 204)),
                                       ("black", (0, 0, 0)), ("10,20,30", (10, 20, 30)),
                                       # any CSS colour keyword, in any case
                                       ("rebeccapurple", (102, 51, 153)), ("DarkSlateGray", (47, 79, 79)),
                                       ("cornflowerblue", (100, 149, 237)), ("green", (0, 128, 0))])
def test_parse_color(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("bad", ["#ff00f", "purpleish", "300,0,0", ""])
def test_parse_color_rejects(bad):
    with pytest.raises(ConfigError):
        parse_color(bad)


def test_head_boxes_extend_up_and_to_the_back():
    from veil.render.mask import head_boxes

    box = np.array([[100, 100, 140, 150]], np.float32)
    frontal = np.array([[[110, 115], [130, 115], [120, 128], [112, 140], [128, 140]]], np.float32)
    looks_right = frontal.copy()
    looks_right[0, 2, 0] = 128  # nose right of the eyes' midpoint: the back of the head is on the left
    f = head_boxes(box, frontal)[0]
    r = head_boxes(box, looks_right)[0]
    none = head_boxes(box, np.full((1, 5, 2), np.nan, np.float32))[0]
    assert f[1] < 100 and f[3] == 150 and f[0] == 100 and f[2] == 140  # only up for a frontal face
    assert r[0] < 100 - 20 and r[2] == 140  # extended backwards (left), never moved off the face
    assert (none == f).all()


def test_head_mask_is_default(texture):
    hair = (slice(48, 58), slice(130, 150))  # just above the face box
    head = build_filter(RenderConfig(filter="solid")).apply(texture, faces(BOX))
    face_only = build_filter(RenderConfig(filter="solid", head=False, mask_scale=1.0)).apply(texture, faces(BOX))
    assert (head[hair] == 0).all() and (face_only[hair] == texture[hair]).all()


def test_regions_skip_boxes_outside_frame():
    assert face_regions(np.array([[500, 500, 600, 600]], np.float32), (100, 100)) == []
