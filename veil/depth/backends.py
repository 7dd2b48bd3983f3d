"""Dense depth backends: RGB-D sensor frames and ONNX monocular depth models.

A backend turns a frame (and its index in the video) into a :class:`DepthMap`, at whatever
resolution it likes; :func:`face_depths` samples it inside each face box. Two kinds:

* ``metric``: depth in metres (RGB-D sensors: 16-bit PNG in millimetres, 0 = no reading).
* ``inverse-relative``: relative inverse depth (disparity up to an unknown scale and shift),
  what MiDaS v2.1 and Depth Anything V2 output: larger = nearer. The annotator scales it to
  metres with the faces whose landmark distance is known (see :mod:`veil.depth.annotator`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import ConfigError, InputError, ModelError

__all__ = ["DepthMap", "DepthBackend", "RGBDFrames", "OnnxMonoDepth", "face_depths"]

log = logging.getLogger("veil")


@dataclass(frozen=True)
class DepthMap:
    values: np.ndarray  #: (h, w) float32; NaN = no reading
    kind: str  #: "metric" (metres) or "inverse-relative"
    source: str  #: "rgbd" or "mono-depth"


@runtime_checkable
class DepthBackend(Protocol):
    name: str

    def depth(self, frame: np.ndarray, index: int) -> DepthMap | None:
        """Depth for ``frame`` (the ``index``-th of its video); None if there is none."""
        ...


def face_depths(depth: DepthMap, xyxy: np.ndarray, frame_shape: tuple[int, int], inner: float = 0.5) -> np.ndarray:
    """Median depth value inside the central ``inner`` part of each face box (NaN: none)."""
    H, W = frame_shape
    h, w = depth.values.shape
    sx, sy = w / W, h / H
    out = np.full(len(xyxy), np.nan, np.float32)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(xyxy, np.float64)):
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * inner / 2, (y2 - y1) * inner / 2
        a, b = int(np.floor(max(cx - hw, 0) * sx)), int(np.ceil(min(cx + hw, W) * sx))
        c, d = int(np.floor(max(cy - hh, 0) * sy)), int(np.ceil(min(cy + hh, H) * sy))
        patch = depth.values[c:max(d, c + 1), a:max(b, a + 1)]
        patch = patch[np.isfinite(patch)]
        if patch.size:
            out[i] = np.median(patch)
    return out


# --------------------------------------------------------------------------- RGB-D


_NUM = re.compile(r"(\d+)")


class RGBDFrames:
    """Depth frames from an RGB-D camera: ``*_depth.png`` (or any 16-bit PNG) in millimetres.

    ``match="index"``: the i-th frame gets the i-th file in name order. ``match="timestamp"``:
    the first number in each file name is a timestamp in milliseconds; frame i (at ``i / fps``
    seconds) gets the nearest one within half a frame interval. A frame without a depth file
    gets no dense depth (its faces fall back to landmarks; a warning says so once).
    """

    name = "rgbd"

    def __init__(self, folder: Path, match: str = "index", fps: float = 30.0):
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"depth frames folder not found: {folder}")
        files = sorted(folder.glob("*_depth.png")) or sorted(folder.glob("*.png"))
        if not files:
            raise ConfigError(f"no depth frames (*_depth.png, 16-bit PNG in mm) in {folder}")
        self.files = files
        self.match = match
        self.fps = fps
        self._warned_missing = False
        if match == "timestamp":
            stamps = []
            for f in files:
                m = _NUM.search(f.name)
                if not m:
                    raise ConfigError(f"depth frame {f.name} has no number (timestamp in ms) in its name")
                stamps.append(int(m.group(1)))
            self._stamps = np.asarray(stamps, np.float64)

    def file_for(self, index: int) -> Path | None:
        if self.match == "index":
            return self.files[index] if index < len(self.files) else None
        t_ms = index * 1000.0 / self.fps
        j = int(np.argmin(np.abs(self._stamps - t_ms)))
        return self.files[j] if abs(self._stamps[j] - t_ms) <= 500.0 / self.fps else None

    def depth(self, frame: np.ndarray, index: int) -> DepthMap | None:
        path = self.file_for(index)
        if path is None:
            if not self._warned_missing:
                log.warning("no depth frame for frame %d (%d depth files, matched by %s); faces without depth fall "
                            "back to landmarks", index, len(self.files), self.match)
                self._warned_missing = True
            return None
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise InputError(f"{path}: unreadable depth frame")
        if raw.ndim != 2 or raw.dtype != np.uint16:
            raise InputError(f"{path}: depth frames must be single-channel 16-bit PNG in millimetres, "
                             f"got {raw.dtype} with shape {raw.shape}")
        H, W = frame.shape[:2]
        h, w = raw.shape
        if (h, w) != (H, W) and abs(w / h - W / H) > 0.01:
            raise InputError(f"{path}: depth frame is {w}x{h}, the video frame {W}x{H}: different aspect ratio, "
                             "so the depth cannot be registered to the image")
        metres = raw.astype(np.float32) / 1000.0
        metres[raw == 0] = np.nan
        return DepthMap(metres, "metric", "rgbd")


# --------------------------------------------------------------------------- ONNX mono depth


_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class OnnxMonoDepth:
    """A user-supplied monocular depth model (relative inverse depth), run at low resolution.

    Input: ``(1, 3, H, W)`` float32, RGB in [0, 1] normalised with the ImageNet mean and std
    (both MiDaS v2.1 small and Depth Anything V2 expect this). A fixed input size is used as
    is (MiDaS small: 256x256); a dynamic one gets the frame resized to ``side`` on its long
    side, rounded to a multiple of 14 for Depth Anything (ViT patches) or 32 for MiDaS.
    Output: ``(1, H, W)`` or ``(1, 1, H, W)`` relative inverse depth.
    """

    name = "mono-depth"

    def __init__(self, path: Path, kind: str = "auto", side: int = 256, device: str = "cpu", threads: int = 0):
        import onnxruntime as ort

        from ..models.registry import sha256_file
        from ..models.runtime import select_providers, session_options

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"depth model file not found: {path}")
        try:
            # the detector's providers and session options (--device), one place for both
            self.session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                                providers=select_providers(device))
        except Exception as exc:
            raise ModelError(f"{path}: not a loadable ONNX model ({' '.join(str(exc).split())[:200]})") from None
        self.sha256 = sha256_file(path)
        self.path = path
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: a depth model has one input (an RGB image), this one has {len(inputs)}")
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise ModelError(f"{path}: depth model input must be (1, 3, H, W), got {shape}")
        out_shape = outputs[0].shape
        if len(out_shape) not in (3, 4):
            raise ModelError(f"{path}: depth model output must be (1, H, W) or (1, 1, H, W), got {out_shape}")
        self.input_name = inputs[0].name
        if kind == "auto":
            low = path.name.lower()
            kind = "depth-anything" if ("anything" in low or "dav2" in low or "_vits" in low) else "midas"
        self.kind = kind
        mult = 14 if kind == "depth-anything" else 32
        fixed = all(isinstance(d, int) and d > 0 for d in shape[2:])
        self.fixed_hw = (int(shape[2]), int(shape[3])) if fixed else None
        self.side, self.mult = side, mult

    def _input_hw(self, H: int, W: int) -> tuple[int, int]:
        if self.fixed_hw:
            return self.fixed_hw
        k = self.side / max(H, W)
        return (max(self.mult, round(H * k / self.mult) * self.mult), max(self.mult, round(W * k / self.mult) * self.mult))

    def depth(self, frame: np.ndarray, index: int) -> DepthMap | None:
        H, W = frame.shape[:2]
        h, w = self._input_hw(H, W)
        x = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = ((x - _MEAN) / _STD).transpose(2, 0, 1)[None]
        try:
            out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        except Exception as exc:
            raise ModelError(f"{self.path}: depth model failed on a {w}x{h} input "
                             f"({' '.join(str(exc).split())[:200]})") from None
        out = np.asarray(out, np.float32)
        out = out.reshape(out.shape[-2:]) if out.ndim in (3, 4) and np.prod(out.shape[:-2]) == 1 else None
        if out is None:
            raise ModelError(f"{self.path}: depth model output must be (1, H, W) or (1, 1, H, W)")
        out = out.copy()
        out[~np.isfinite(out) | (out <= 0)] = np.nan  # inverse depth must be positive
        return DepthMap(out, "inverse-relative", "mono-depth")
