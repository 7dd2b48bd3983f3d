"""The int8 CenterFace (veil.detect.quantize): accuracy on real photos, and its cache.

One real quantization runs (module fixture, into a temporary ``VEIL_CACHE``); the cache
mechanics that would need more use a stand-in quantizer.
"""

import json
import logging

import pytest

from veil.config import DetectConfig
from veil.detect import build_detector
from veil.detect import quantize as q
from veil.detect.centerface import CenterFace
from veil.models import MODELS, resolve_model, sha256_file


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("veil-cache")
    mp.setenv("VEIL_CACHE", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="module")
def int8(cache):
    before = q.quantize_count
    det = build_detector(DetectConfig(max_side=0, device="cpu", precision="int8"), batch=1)
    assert q.quantize_count == before + 1
    return det


@pytest.fixture(scope="module")
def fp32():
    return build_detector(DetectConfig(max_side=0, device="cpu"), batch=1)


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_default_stays_fp32():
    assert DetectConfig().precision == "fp32"


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_int8_finds_the_face_fp32_finds(int8, fp32, photo, request):
    img = request.getfixturevalue(photo)
    a = int8.detect([img], 0.5)[0]
    b = fp32.detect([img], 0.5)[0]
    assert len(a) == len(b) == 1
    assert iou(a.xyxy[0], b.xyxy[0]) > 0.8
    assert abs(a.scores[0] - b.scores[0]) < 0.1


def test_reports_tell_the_models_apart(int8, fp32, cache):
    src_sha = MODELS["centerface"].sha256
    assert (fp32.precision, fp32.model_sha256, fp32.source_model_sha256) == ("fp32", src_sha, src_sha)
    assert int8.precision == "int8" and int8.source_model_sha256 == src_sha
    assert int8.model_sha256 != src_sha
    (onnx_file,) = cache.glob("centerface-int8-*.onnx")
    assert sha256_file(onnx_file) == int8.model_sha256
    record = json.loads(onnx_file.with_suffix(".json").read_text())
    assert record["sha256"] == int8.model_sha256 and record["source_sha256"] == src_sha
    assert record["recipe_version"] == q.RECIPE_VERSION


def test_second_build_reuses_the_cache(int8, cache):
    (onnx_file,) = cache.glob("centerface-int8-*.onnx")
    mtime = onnx_file.stat().st_mtime_ns
    before = q.quantize_count
    again = build_detector(DetectConfig(max_side=640, device="cpu", precision="int8"))
    assert q.quantize_count == before
    assert onnx_file.stat().st_mtime_ns == mtime
    assert again.model_sha256 == int8.model_sha256


def test_quantization_is_deterministic(int8, tmp_path):
    src, _ = resolve_model("centerface")
    again = tmp_path / "again.onnx"
    q.quantize_model(src, again, CenterFace.dynamic_inputs, CenterFace.dynamic_outputs)
    assert sha256_file(again) == int8.model_sha256


def test_cache_key_changes_with_source_and_recipe():
    a, b = "a" * 64, "b" * 64
    assert q.cache_key(a) == q.cache_key(a)
    assert q.cache_key(a) != q.cache_key(b)
    assert q.cache_key(a) != q.cache_key(a, recipe_version=q.RECIPE_VERSION + 1)


# -- cache mechanics with a stand-in quantizer (fast) ---------------------------------
@pytest.fixture
def fake_quantizer(tmp_path, monkeypatch):
    calls = []

    def fake(src, dst, dynamic_inputs, dynamic_outputs, *args, **kwargs):
        calls.append(dst)
        dst.write_bytes(b"int8 stand-in for " + src.name.encode())

    monkeypatch.setattr(q, "quantize_model", fake)
    monkeypatch.setenv("VEIL_CACHE", str(tmp_path / "cache"))
    src, digest = resolve_model("centerface")
    return calls, src, digest


def test_corrupted_cache_file_is_quantized_again(fake_quantizer, caplog):
    calls, src, digest = fake_quantizer
    with q.int8_model(src, digest, {}, {}) as first:
        assert not first.cached and first.path.is_file()
    with q.int8_model(src, digest, {}, {}) as second:
        assert second.cached and second.sha256 == first.sha256
    assert len(calls) == 1
    first.path.write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="veil"):
        with q.int8_model(src, digest, {}, {}) as third:
            assert not third.cached and third.sha256 == first.sha256
    assert len(calls) == 2
    assert "does not match its record" in caplog.text
    assert not list(first.path.parent.glob(".*part*"))  # no temporary files left behind


def test_other_source_sha_gets_its_own_file(fake_quantizer):
    calls, src, digest = fake_quantizer
    with q.int8_model(src, digest, {}, {}) as a, q.int8_model(src, "0" * 64, {}, {}) as b:
        assert a.path != b.path and a.key != b.key
    assert len(calls) == 2


def test_unwritable_cache_quantizes_into_a_temporary_folder(fake_quantizer, tmp_path, monkeypatch, caplog):
    calls, src, digest = fake_quantizer
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("VEIL_CACHE", str(blocker / "veil"))
    with caplog.at_level(logging.WARNING, logger="veil"):
        with q.int8_model(src, digest, {}, {}) as m:
            assert m.path.is_file() and not m.cached
            assert not m.path.is_relative_to(blocker)
    assert not m.path.exists()  # removed once loaded
    assert "not writable" in caplog.text
