"""The distance annotator: one distance per face, smoothed per track.

For each frame (``annotate(frame, faces)``, every frame of a video in order):

1. landmark distance (:mod:`veil.depth.landmarks`) with the focal length from EXIF (images:
   the camera tags the pipeline passes in :class:`veil.stages.FrameInfo`), ``focal_px`` or ``hfov``;
2. with a dense backend, the depth at each face: RGB-D depth replaces the landmark
   estimate (it is measured); monocular inverse depth is scaled to metres with the faces
   whose landmark distance is known (``1/Z = a v + b``; scale only with one face; the last
   scale is kept for frames without any), and gives a distance to faces without landmarks;
3. per track, the median of the last ``smooth_frames`` distances: a face whose landmarks
   drop out for a few frames keeps its track's distance, and single-frame outliers do not
   flip decisions (the rules add hysteresis on top, see :mod:`veil.policy.distance`).

Columns written: ``distance_m`` (NaN = unknown), ``data["distance_source"]`` (landmarks,
rgbd, mono-depth, ``+track`` when carried by the track, or ``unknown: why``) and
``data["distance_key"]`` (a value that orders faces of one frame by distance, also when no
focal length is known: then the landmark scale's inverse). With a dense backend the frame's
depth map in metres goes to ``info.depth_m`` (for the background blur,
:class:`veil.depth.background.BackgroundBlur`); with ``keep_map`` it is computed also on frames
without faces.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np

from ..faces import DISTANCE_KEY, DISTANCE_SOURCE, Faces
from ..stages import FrameInfo, StageBase
from .backends import DepthBackend, DepthMap, face_depths
from .focal import resolve_focal
from .landmarks import landmark_problems, landmark_scale

__all__ = ["DistanceAnnotator"]

log = logging.getLogger("veil")


class DistanceAnnotator(StageBase):
    """The distance stage (:class:`veil.stages.Stage`), see the module doc."""

    name = "distance"

    def __init__(self, focal_px: float | None = None, hfov: float | None = None, backend: DepthBackend | None = None,
                 every: int = 1, smooth_frames: int = 5, max_age: int = 30, keep_map: bool = False):
        self.focal_px, self.hfov = focal_px, hfov
        self.backend = backend
        self.every = every if (backend is not None and backend.name == "mono-depth") else 1
        self.smooth_frames, self.max_age = smooth_frames, max_age
        self.seconds = {"landmarks": 0.0, "dense": 0.0}
        self.dense_runs = 0
        self.keep_map = keep_map  # compute dense depth also on frames without faces (background blur)
        self.reset()

    # -- state -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget tracks and depth maps (a new video starts)."""
        self.index = 0
        self._tracks: dict[int, deque] = {}
        self._map: DepthMap | None = None
        self._map_index = -1
        self._mono_fit: tuple[float, float] | None = None

    def focal_for(self, frame: np.ndarray, camera: dict | None = None) -> tuple[float | None, str]:
        """Focal length in pixels and where it came from; ``camera``: the still image's tags."""
        H, W = frame.shape[:2]
        return resolve_focal(W, H, camera, self.focal_px, self.hfov)

    # -- per frame ---------------------------------------------------------------------
    def annotate(self, frame: np.ndarray, faces: Faces, info: FrameInfo | None = None) -> Faces:
        info = info if info is not None else FrameInfo()
        index = self.index
        self.index += 1
        n = len(faces)
        H, W = frame.shape[:2]
        t0 = time.perf_counter()
        focal, focal_src = self.focal_for(frame, info.camera)
        scale, _, _ = landmark_scale(faces.landmarks)
        problems = landmark_problems(faces.landmarks, W, H)
        usable = np.array([p is None for p in problems], bool) & np.isfinite(scale) & (scale > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_scale = np.where(usable, 1.0 / scale, np.nan)  # mm per pixel, proportional to distance
        dist = (inv_scale * focal / 1000.0) if focal else np.full(n, np.nan)
        key = dist.copy() if focal else inv_scale.copy()
        src = np.array(["landmarks" if usable[i] else f"unknown: {problems[i] or 'landmarks do not fit a face'}"
                        for i in range(n)], object)
        if focal is None:
            src[usable] = "unknown: no focal length (EXIF, --focal-px or --hfov)"
        self.seconds["landmarks"] += time.perf_counter() - t0

        if self.backend is not None and (n or self.keep_map):
            dist, key, src = self._dense(frame, index, faces, dist, key, src, focal, info)

        dist, key, src = self._smooth(faces.track_id, index, dist.astype(np.float64), key.astype(np.float64), src)
        data = dict(faces.data)
        data[DISTANCE_SOURCE] = src
        data[DISTANCE_KEY] = key.astype(np.float32)
        return faces.with_columns(distance_m=dist.astype(np.float32), data=data)

    def _dense(self, frame, index, faces, dist, key, src, focal, info: FrameInfo):
        assert self.backend is not None  # called only with a depth backend
        t0 = time.perf_counter()
        if self._map is None or index - self._map_index >= self.every or self.backend.name == "rgbd":
            self._map = self.backend.depth(frame, index)
            self._map_index = index
            self.dense_runs += 1
        dmap = self._map
        if dmap is None:
            self.seconds["dense"] += time.perf_counter() - t0
            return dist, key, src
        v = face_depths(dmap, faces.xyxy, frame.shape[:2]) if len(faces) else np.zeros(0, np.float32)
        dist, key = dist.copy(), key.copy()
        if dmap.kind == "metric":
            ok = np.isfinite(v)
            dist[ok] = v[ok]
            key[ok] = v[ok]
            src[ok] = "rgbd"
            info.depth_m = dmap.values
        else:
            anchors = np.isfinite(v) & np.isfinite(dist) & (src == "landmarks")
            fit = self._fit_inverse(v[anchors], dist[anchors]) if anchors.any() else self._mono_fit
            if fit is not None:
                self._mono_fit = fit
                a, b = fit
                with np.errstate(divide="ignore", invalid="ignore"):
                    z = 1.0 / (a * v + b)
                fill = np.isfinite(v) & ~np.isfinite(dist) & np.isfinite(z) & (z > 0)
                dist[fill] = z[fill]
                key[fill] = z[fill]
                src[fill] = "mono-depth"
                with np.errstate(divide="ignore", invalid="ignore"):
                    zmap = 1.0 / (a * dmap.values + b)
                zmap[~(zmap > 0)] = np.nan
                info.depth_m = zmap.astype(np.float32)
            elif focal is None:
                # no metric anchor: rank faces by relative inverse depth (nearer = larger)
                fill = np.isfinite(v) & ~np.isfinite(key)
                if np.isfinite(v).all() and len(v):
                    key = (1.0 / v).astype(np.float64)
                    src[fill] = "unknown: mono depth is relative (no face to scale it)"
        self.seconds["dense"] += time.perf_counter() - t0
        return dist, key, src

    @staticmethod
    def _fit_inverse(v: np.ndarray, z: np.ndarray) -> tuple[float, float] | None:
        """``1/z = a v + b`` (least squares, b = 0 with one anchor); None if degenerate."""
        y = 1.0 / z
        if len(v) >= 2 and np.ptp(v) > 1e-6 * max(abs(v).max(), 1e-12):
            a, b = np.polyfit(v, y, 1)
        else:
            a, b = float(np.median(y / v)), 0.0
        return (float(a), float(b)) if a > 0 else None

    def _smooth(self, track_id, index, dist, key, src):
        for tid in [t for t, h in self._tracks.items() if index - h[-1][0] > self.max_age]:
            del self._tracks[tid]
        out_d, out_k = dist.copy(), key.copy()
        for i, tid in enumerate(np.asarray(track_id)):
            if tid < 0:
                continue
            hist = self._tracks.setdefault(int(tid), deque(maxlen=self.smooth_frames))
            if np.isfinite(dist[i]) or np.isfinite(key[i]):
                hist.append((index, dist[i], key[i], str(src[i])))
            recent = [h for h in hist if index - h[0] <= self.max_age]
            if not recent:
                continue
            d = np.array([h[1] for h in recent])
            k = np.array([h[2] for h in recent])
            if np.isfinite(d).any():
                out_d[i] = np.median(d[np.isfinite(d)])
            if np.isfinite(k).any():
                out_k[i] = np.median(k[np.isfinite(k)])
            if not np.isfinite(dist[i]) and np.isfinite(out_d[i]):
                last = next(h[3] for h in reversed(recent) if np.isfinite(h[1]))
                src[i] = last if last.endswith("+track") else f"{last}+track"
        return out_d, out_k, src
