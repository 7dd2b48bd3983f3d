"""Distance of a face from its 5 landmarks and the pinhole model (no depth network).

Adult faces have a nearly constant physical size, so the scale of the landmark pattern in
pixels gives the distance: ``Z = f / s`` with ``f`` the focal length in pixels and ``s`` the
scale in pixels per millimetre. The inter-ocular distance alone shrinks with ``cos(yaw)``
when the head turns, so the scale comes from fitting a generic 3-D 5-point face (mm) to the
landmarks: for each head pose on a yaw x pitch grid the rotated model is projected
orthographically and matched to the points by a 2-D similarity (scale + roll +
translation, closed form); the pose with the smallest residual gives the scale. This is the
"head-pose correction from the 5 points": a turned face keeps its eye-to-mouth height, a
nodding face keeps its eye distance, and the nose says which way it turned.

The model is generic anthropometry (pupil distance 63 mm, eyes-to-mouth-corners 63 mm,
nose tip 20 mm in front of the eyes), not fitted to any evaluation data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FACE_MODEL_MM", "landmark_scale", "landmark_distance", "landmark_problems"]

#: Generic face, mm; x to the image right, y down, z towards the camera. CenterFace order:
#: right eye, left eye, nose, right and left mouth corner as seen in the image.
FACE_MODEL_MM = np.array(
    [[-31.5, 0.0, 0.0], [31.5, 0.0, 0.0], [0.0, 32.0, 20.0], [-25.0, 63.0, -5.0], [25.0, 63.0, -5.0]],
    np.float64,
)

_YAW = np.deg2rad(np.arange(-90, 91, 3, dtype=np.float64))
_PITCH = np.deg2rad(np.arange(-40, 41, 5, dtype=np.float64))


def _projected_grid() -> np.ndarray:
    """(P, 5) complex: the model rotated by every (yaw, pitch), projected, centred."""
    yaw_grid, pitch_grid = np.meshgrid(_YAW, _PITCH, indexing="ij")
    yaw, pitch = yaw_grid.ravel(), pitch_grid.ravel()
    X, Y, Z = FACE_MODEL_MM.T
    # yaw about the vertical axis, then pitch about the horizontal one
    x1 = X[None] * np.cos(yaw)[:, None] + Z[None] * np.sin(yaw)[:, None]
    z1 = -X[None] * np.sin(yaw)[:, None] + Z[None] * np.cos(yaw)[:, None]
    y2 = Y[None] * np.cos(pitch)[:, None] - z1 * np.sin(pitch)[:, None]
    p = x1 + 1j * y2
    return p - p.mean(axis=1, keepdims=True)


_GRID = _projected_grid()
_GRID_NORM2 = (np.abs(_GRID) ** 2).sum(axis=1)
_GRID_ANGLES = np.stack(np.meshgrid(np.rad2deg(_YAW), np.rad2deg(_PITCH), indexing="ij"), -1).reshape(-1, 2)


def landmark_scale(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale (px per mm), head pose (yaw, pitch in degrees) and relative fit residual.

    ``landmarks``: (n, 5, 2). Rows with a NaN come back NaN.
    """
    lm = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    n = len(lm)
    scale = np.full(n, np.nan)
    pose = np.full((n, 2), np.nan)
    resid = np.full(n, np.nan)
    ok = np.isfinite(lm).all(axis=(1, 2))
    if not ok.any():
        return scale, pose, resid
    q = lm[ok, :, 0] + 1j * lm[ok, :, 1]
    q = q - q.mean(axis=1, keepdims=True)  # (m, 5)
    q2 = (np.abs(q) ** 2).sum(axis=1)  # (m,)
    cross = q @ np.conj(_GRID).T  # (m, P): sum_k q_k conj(p_k)
    # residual of the best similarity fit of each grid pose: |q|^2 - |<p,q>|^2 / |p|^2
    r = q2[:, None] - np.abs(cross) ** 2 / _GRID_NORM2[None]
    best = np.argmin(r, axis=1)
    s = np.abs(cross[np.arange(len(q)), best]) / _GRID_NORM2[best]
    scale[ok] = s
    pose[ok] = _GRID_ANGLES[best]
    resid[ok] = np.sqrt(np.maximum(r[np.arange(len(q)), best], 0) / np.maximum(q2, 1e-12))
    return scale, pose, resid


def landmark_problems(landmarks: np.ndarray, width: int, height: int, min_px: float = 4.0) -> list[str | None]:
    """Why a face's landmarks cannot give a distance (None = usable), one per face."""
    out: list[str | None] = []
    for lm in np.asarray(landmarks, np.float64).reshape(-1, 5, 2):
        if not np.isfinite(lm).all():
            out.append("no landmarks (e.g. a profile face or a detector without landmarks)")
        elif (lm[:, 0] < 0).any() or (lm[:, 1] < 0).any() or (lm[:, 0] > width).any() or (lm[:, 1] > height).any():
            out.append("face partly outside the frame")
        elif np.ptp(lm[:, 1]) < min_px and np.ptp(lm[:, 0]) < min_px:
            out.append("face too small for landmarks")
        else:
            out.append(None)
    return out


def landmark_distance(landmarks: np.ndarray, focal_px: float) -> np.ndarray:
    """Distance along the optical axis in metres, ``f / s``; NaN where unknown."""
    s, _, _ = landmark_scale(landmarks)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (float(focal_px) / s / 1000.0).astype(np.float32)
