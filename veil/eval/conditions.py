"""Detection recall per group under controlled capture conditions (``veil eval conditions``).

Labelled face crops (the FairFace layout: ``labels.csv`` with a ``file`` column and group
columns such as ``race``, ``gender``, ``age``) are rendered under one condition at a time and
run through the detector. Conditions are simulated where they happen physically:

- ``dark``: exposure falls in *linear* light (gain), then photon shot noise (Poisson, with a
  full well of ``FULL_WELL`` electrons at white) and read noise are added, and the camera's
  gamma is applied again; this is why dark skin suffers most: fewer photons, lower SNR;
- ``small``: the crop shrunk so that the face is ~``size`` px, pasted on a grey canvas;
- ``motion`` / ``defocus``: a line / disk point-spread function;
- ``jpeg``: heavy compression; ``occlusion``: the lower half of the face covered (a scarf,
  a mask, a hand), in a colour drawn per image.

Every random choice comes from a generator seeded per crop, so every run (and every
detector setting) sees exactly the same pixels.

A face counts as found when a detection above the threshold overlaps the crop's nominal
face box (:data:`FACE_BOX`, relative to the crop: where CenterFace puts the face in clean
FairFace crops, median over the crops) with IoU >= :data:`MATCH_IOU`.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from ..errors import ConfigError, CorruptMediaError, InputError, MediaNotFoundError
from ..faces import Faces
from ..srgb import to_linear, to_srgb

__all__ = ["Crop", "CONDITIONS", "FACE_BOX", "MATCH_IOU", "read_crops", "render", "found_in", "parse_condition"]

#: nominal face box in a FairFace crop, as fractions of width / height (x0, y0, x1, y1)
FACE_BOX = (0.09, 0.0, 0.91, 0.93)
MATCH_IOU = 0.4
FULL_WELL = 3000.0  # electrons at white in the simulated low-light sensor (a small phone pixel)
READ_NOISE = 3.0  # electrons


@dataclass(frozen=True)
class Crop:
    file: str
    groups: Mapping[str, str]


def read_crops(folder: str | Path, columns: Sequence[str] | None = None, allow_partial: bool = False) -> tuple[list[Crop], list[str]]:
    """Crops listed in ``folder/labels.csv`` (``file`` + group columns): (present, missing files).

    Raises:
        MediaNotFoundError: no labels.csv.
        CorruptMediaError: a missing column or an empty field, naming the file and line.
        InputError: listed images are missing, unless ``allow_partial``.
    """
    folder = Path(folder)
    path = folder / "labels.csv"
    if not path.is_file():
        raise MediaNotFoundError(f"labels file not found: {path} (expected the FairFace layout: labels.csv with a 'file' column)")
    crops, missing = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "file" not in fields:
            raise CorruptMediaError(f"{path}:1: missing column 'file' (have {', '.join(fields)})")
        cols = list(columns) if columns else [c for c in ("race", "gender", "age") if c in fields]
        bad = [c for c in cols if c not in fields]
        if bad or not cols:
            raise CorruptMediaError(f"{path}:1: missing group column(s) {', '.join(bad) or '(none given)'}")
        for lineno, row in enumerate(reader, start=2):
            file = (row.get("file") or "").strip()
            groups = {c: (row.get(c) or "").strip() for c in cols}
            if not file or not all(groups.values()):
                raise CorruptMediaError(f"{path}:{lineno}: empty field in {row}")
            if not (folder / file).is_file():
                missing.append(file)
                continue
            crops.append(Crop(file, groups))
    if missing and not allow_partial:
        raise InputError(f"{len(missing)} crops listed in {path} are missing: {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''} (--allow-partial evaluates the rest)")
    return crops, missing


def _rng(file: str, condition: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{condition}:{file}".encode()))


def _to_linear(rgb: np.ndarray) -> np.ndarray:
    return to_linear(rgb.astype(np.float32) / 255.0)


def _to_srgb(lin: np.ndarray) -> np.ndarray:
    return np.clip(to_srgb(np.clip(lin, 0.0, 1.0)) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def dark(rgb: np.ndarray, rng: np.random.Generator, gain: float = 0.025) -> np.ndarray:
    """Exposure ``gain`` in linear light, shot + read noise, back to sRGB (no brightening)."""
    electrons = _to_linear(rgb) * gain * FULL_WELL
    noisy = rng.poisson(electrons).astype(np.float32) + rng.normal(0.0, READ_NOISE, electrons.shape).astype(np.float32)
    return _to_srgb(noisy / FULL_WELL)


def small(rgb: np.ndarray, rng: np.random.Generator, size: float = 20.0, canvas: int = 96) -> np.ndarray:
    """Shrink so the face box is ``size`` px wide, paste in the middle of a grey canvas."""
    h, w = rgb.shape[:2]
    face_w = (FACE_BOX[2] - FACE_BOX[0]) * w
    s = size / face_w
    im = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.full((canvas, canvas, 3), 128, np.uint8)
    y0, x0 = (canvas - im.shape[0]) // 2, (canvas - im.shape[1]) // 2
    out[y0:y0 + im.shape[0], x0:x0 + im.shape[1]] = im
    return out


def motion(rgb: np.ndarray, rng: np.random.Generator, length: float = 0.12) -> np.ndarray:
    """Linear motion blur over ``length`` × the crop width, in a random direction."""
    n = max(3, int(round(length * rgb.shape[1])) | 1)
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(k, rot, (n, n))
    return cv2.filter2D(rgb, -1, kernel / max(kernel.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def defocus(rgb: np.ndarray, rng: np.random.Generator, radius: float = 0.04) -> np.ndarray:
    """Disk point-spread function of ``radius`` × the crop width."""
    r = max(1, int(round(radius * rgb.shape[1])))
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    cv2.circle(k, (r, r), r, 1.0, -1)
    return cv2.filter2D(rgb, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def jpeg(rgb: np.ndarray, rng: np.random.Generator, quality: float = 10) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert ok and decoded is not None  # OpenCV reads back the JPEG it just wrote
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def occlusion(rgb: np.ndarray, rng: np.random.Generator, cover: float = 0.5) -> np.ndarray:
    """The lower ``cover`` of the face box filled with one random, plain colour."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = FACE_BOX
    top = int(round((y1 - cover * (y1 - y0)) * h))
    out = rgb.copy()
    out[top:int(round(y1 * h)), int(round(x0 * w)):int(round(x1 * w))] = rng.integers(0, 256, 3, dtype=np.uint8)
    return out


def clean(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rgb


#: name -> (render function, default level, the level's meaning)
CONDITIONS: dict[str, tuple[Callable[..., np.ndarray], float | None, str]] = {
    "clean": (clean, None, ""),
    "dark": (dark, 0.025, "exposure gain in linear light"),
    "small": (small, 20.0, "face width in px"),
    "motion": (motion, 0.12, "blur length / crop width"),
    "defocus": (defocus, 0.04, "disk radius / crop width"),
    "jpeg": (jpeg, 10.0, "JPEG quality"),
    "occlusion": (occlusion, 0.5, "covered share of the face height"),
}


def parse_condition(spec: str) -> tuple[str, float | None]:
    """``"dark"`` or ``"dark:0.03"`` -> (name, level)."""
    name, _, level = spec.partition(":")
    if name not in CONDITIONS:
        raise ConfigError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
    default = CONDITIONS[name][1]
    if not level:
        return name, default
    if default is None:
        raise ConfigError(f"condition {name!r} takes no level")
    try:
        return name, float(level)
    except ValueError:
        raise ConfigError(f"bad level {level!r} for condition {name!r}") from None


def render(rgb: np.ndarray, file: str, name: str, level: float | None) -> np.ndarray:
    """The crop under one condition; deterministic per (file, condition, level)."""
    fn, _, _ = CONDITIONS[name]
    rng = _rng(file, f"{name}:{level}")
    return fn(rgb, rng) if level is None else fn(rgb, rng, level)


def expected_box(crop_hw: tuple[int, int], name: str, level: float | None, out_hw: tuple[int, int]) -> np.ndarray:
    """The nominal face box (xyxy) in the rendered image's pixels."""
    h, w = crop_hw
    box = np.array(FACE_BOX) * [w, h, w, h]
    if name == "small":
        face_w = (FACE_BOX[2] - FACE_BOX[0]) * w
        s = float(level) / face_w  # type: ignore[arg-type]
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
        oy, ox = (out_hw[0] - sh) // 2, (out_hw[1] - sw) // 2
        box = box * [sw / w, sh / h, sw / w, sh / h] + [ox, oy, ox, oy]
    return box


def found_in(faces: Faces, box: np.ndarray, threshold: float) -> bool:
    """Whether a detection above ``threshold`` overlaps ``box`` with IoU >= MATCH_IOU."""
    f = faces[faces.scores >= threshold]
    if not len(f):
        return False
    a = f.xyxy
    iw = np.clip(np.minimum(a[:, 2], box[2]) - np.maximum(a[:, 0], box[0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], box[3]) - np.maximum(a[:, 1], box[1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return bool(np.any(inter / np.maximum(union, 1e-9) >= MATCH_IOU))
