"""Enrolment: photos or a short video in, checked embeddings out, into the gallery.

A photo is refused, with the reason, when veil finds no face in it, several faces, or a
face too small (short side under :data:`MIN_FACE_PX`), too blurry (sharpness of the aligned
face chip under :data:`MIN_SHARPNESS`) or turned too far (yaw estimated from the detector's
landmarks over :data:`MAX_YAW`, the limit beyond which the identify stage does not embed a
face either) to give a reliable embedding. Photos enrolled together must show the same
person, and photos appended to someone must match them: a gallery never holds two people
under one name.

A video (``veil gallery add NAME clip.mp4``) is sampled a few times a second; frames with
exactly one acceptable face are candidates, and up to :data:`VIDEO_PICKS` of them are kept:
the sharpest, most frontal first, then each next one the candidate farthest (in embedding
space) from those already picked, so the gallery covers the person's range of views.

:func:`distances_in` measures what veil would see for a person in an image or a video
(``veil gallery test``), before a real run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..config import DetectConfig
from .embedder import Embedder, face_chip_sharpness
from .people import GalleryError, Person
from .track_identity import yaws

if TYPE_CHECKING:  # the gallery calls enroll(): no import back at run time
    from .gallery import Gallery

__all__ = ["embed_photo", "embed_video", "enroll", "distances_in", "face_problem", "MIN_FACE_PX", "MIN_SHARPNESS",
           "MAX_YAW", "ENROLL_MIN_SCORE", "VIDEO_PICKS"]

#: smallest face (short side of the detector box, pixels) accepted for enrolment
MIN_FACE_PX = 48
#: lowest variance of the Laplacian of the 150 px aligned face chip accepted for enrolment
MIN_SHARPNESS = 20.0
#: largest yaw (nose offset from the eyes' midpoint / eye distance) accepted for enrolment
MAX_YAW = 0.5
#: detector score above which a face counts (for "several faces" too)
ENROLL_MIN_SCORE = 0.5
#: frames kept from an enrolment video, and how often it is sampled
VIDEO_PICKS = 5
VIDEO_SAMPLES_PER_S = 4.0


def face_problem(rgb: np.ndarray, faces, i: int, embedder: Embedder) -> tuple[str | None, float]:
    """Why face ``i`` is not good enough to enrol (None if it is), and a quality score
    (bigger is better: sharp, frontal, large)."""
    side = float(faces.wh[i].min())
    if side < MIN_FACE_PX:
        return f"the face is too small ({side:.0f} px, need {MIN_FACE_PX}); use a closer or larger photo", 0.0
    yaw = float(yaws(faces.landmarks[i:i + 1])[0])
    if not np.isfinite(yaw) or yaw > MAX_YAW:
        return (f"the face is turned away (yaw {yaw:.2f}, need <= {MAX_YAW}); use a photo looking at the camera"
                if np.isfinite(yaw) else "no facial landmarks found; use a clear, frontal photo"), 0.0
    sharp = float("inf")
    chip = getattr(embedder, "chip", None)
    if chip is not None:
        sharp = face_chip_sharpness(chip(rgb, faces, i))
        if sharp < MIN_SHARPNESS:
            return f"the face is too blurry (sharpness {sharp:.0f}, need {MIN_SHARPNESS:.0f}); use a sharper photo", 0.0
    return None, min(sharp, 500.0) / 500.0 + (1.0 - yaw) + min(side, 160.0) / 160.0


def _detector(detect: DetectConfig | None):
    from ..detect import build_detector

    cfg = (detect or DetectConfig()).model_copy(update={"tile": False})
    return build_detector(cfg, batch=1)


def embed_photo(path: Path | str, embedder: Embedder, detector=None) -> np.ndarray:
    """The embedding of the one face in a photo; :class:`GalleryError` says why not."""
    from ..io.images import read_image

    path = Path(path)
    rgb = read_image(path).rgb
    detector = detector or _detector(None)
    faces = detector.detect([rgb], ENROLL_MIN_SCORE)[0]
    if len(faces) == 0:
        raise GalleryError(f"{path}: no face found; enrol with a clear, frontal photo of the person")
    if len(faces) > 1:
        raise GalleryError(f"{path}: {len(faces)} faces found; enrolment needs a photo of one person only (crop it)")
    problem, _ = face_problem(rgb, faces, 0, embedder)
    if problem:
        raise GalleryError(f"{path}: {problem}")
    return embedder.embed_faces(rgb, faces)[0]


def _sampled_frames(path: Path, per_s: float):
    """``(index, rgb)`` of a video, about ``per_s`` frames a second."""
    from ..io.video import probe_video, read_frames

    fps = float(probe_video(path).fps or 30.0)
    step = max(1, int(round(fps / per_s)))
    for i, rgb in enumerate(read_frames(path)):
        if i % step == 0:
            yield i, rgb


def embed_video(path: Path | str, embedder: Embedder, detector=None, picks: int = VIDEO_PICKS) -> np.ndarray:
    """Up to ``picks`` embeddings of the one person in a short video: sharp, frontal, varied
    frames (see the module doc); :class:`GalleryError` says why none qualify."""
    path = Path(path)
    detector = detector or _detector(None)
    cands: list[tuple[float, np.ndarray]] = []
    crowded = sampled = 0
    problems: dict[str, int] = {}
    for _, rgb in _sampled_frames(path, VIDEO_SAMPLES_PER_S):
        sampled += 1
        faces = detector.detect([rgb], ENROLL_MIN_SCORE)[0]
        if len(faces) != 1:
            crowded += len(faces) > 1
            continue
        problem, quality = face_problem(rgb, faces, 0, embedder)
        if problem:
            key = problem.split(" (")[0]
            problems[key] = problems.get(key, 0) + 1
            continue
        cands.append((quality, embedder.embed_faces(rgb, faces)[0]))
    if not cands:
        why = "; ".join(f"{n} frame(s): {k}" for k, n in sorted(problems.items(), key=lambda kv: -kv[1]))
        extra = f"; {crowded} frame(s) with several faces" if crowded else ""
        raise GalleryError(f"{path}: no frame with one clear, frontal face among {sampled} sampled"
                           + (f" ({why}{extra})" if why or extra else "") + "; film the person alone, facing the camera")
    cands.sort(key=lambda c: -c[0])
    vecs = np.stack([c[1] for c in cands])
    chosen = [0]
    while len(chosen) < min(picks, len(vecs)):
        d = np.linalg.norm(vecs[:, None, :] - vecs[chosen][None, :, :], axis=2).min(axis=1)
        d[chosen] = -1
        chosen.append(int(np.argmax(d)))
    return vecs[chosen]


def _embed_source(path: Path | str, embedder: Embedder, detector) -> np.ndarray:
    """``(k, dim)``: one embedding of a photo, several of a video."""
    from ..io.paths import media_kind

    if media_kind(Path(path)) == "video":
        return embed_video(path, embedder, detector)
    return embed_photo(path, embedder, detector)[None, :]


def distances_in(media: Path | str, vectors: np.ndarray, embedder: Embedder, detector=None,
                 per_s: float = 2.0) -> list[dict]:
    """What veil would see for an enrolled person in an image or video: per face (of the
    image, or of frames sampled ``per_s`` times a second), its box, the distance to the
    closest of ``vectors``, and whether it could be embedded at all (size, yaw, edge)."""
    from ..io.paths import media_kind
    from .track_identity import TrackIdentifier

    media = Path(media)
    detector = detector or _detector(None)
    gate = TrackIdentifier(embedder, None)  # its quality gate: the faces the identify stage would embed
    if media_kind(media) == "video":
        frames = _sampled_frames(media, per_s)
    else:
        from ..io.images import read_image

        frames = iter([(0, read_image(media).rgb)])
    out = []
    for index, rgb in frames:
        faces = detector.detect([rgb], ENROLL_MIN_SCORE)[0]
        if not len(faces):
            continue
        q = gate.quality(faces, rgb.shape[:2])
        ok = np.flatnonzero(q > 0)
        dist = np.full(len(faces), np.nan)
        if len(ok):
            vecs = embedder.embed_faces(rgb, faces[ok])
            dist[ok] = np.linalg.norm(vecs[:, None, :] - vectors[None, :, :], axis=2).min(axis=1)
        for i in range(len(faces)):
            out.append({"frame": index, "box": [round(float(v)) for v in faces.xyxy[i]],
                        "distance": None if np.isnan(dist[i]) else round(float(dist[i]), 3)})
    return out


def enroll(gallery: Gallery, name: str, photos: Sequence[Path | str], embedder: Embedder, *,
           purpose: str | None = None, expires: dt.date | None = None, consent_date: dt.date | None = None,
           append: bool = False, detect: DetectConfig | None = None) -> tuple[Person, list[str]]:
    """Enroll ``name`` from ``photos`` (all must pass; a video gives several embeddings);
    returns the person and warnings.

    ``append`` adds the photos to someone already enrolled, after checking they match.
    Nothing is written unless every photo is accepted.
    """
    if not photos:
        raise GalleryError("give at least one photo")
    if not append and name.strip() in gallery:
        gallery.add(name, np.zeros((0, 1)), embedder.name)  # raises the 'already enrolled' error
    if append and name not in gallery:
        raise GalleryError(f"nobody is enrolled as {name!r}; drop --append to enrol a new person")
    det = _detector(detect)
    per_source = [_embed_source(p, embedder, det) for p in photos]
    vecs = np.concatenate(per_source)
    source = [photos[k] for k, v in enumerate(per_source) for _ in range(len(v))]
    thr = embedder.threshold + 0.1  # the upper end of the uncertainty band
    warnings: list[str] = []
    for i in range(len(vecs)):
        for j in range(i + 1, len(vecs)):
            d = float(np.linalg.norm(vecs[i] - vecs[j]))
            if d >= thr:
                where = (f"{source[i]} and {source[j]} do not show" if source[i] != source[j]
                         else f"{source[i]} does not show only")
                raise GalleryError(f"{where} the same person (distance {d:.2f} >= {thr:g}); "
                                   "enrol each person under their own name")
    if append:
        names, known = gallery.embeddings(embedder.name, [name], today=dt.date.min)
        if len(known):
            d = float(np.linalg.norm(known[:, None, :] - vecs[None, :, :], axis=2).min(axis=0).max())
            if d >= thr:
                raise GalleryError(f"these photos do not match the person enrolled as {name!r} (distance {d:.2f} >= {thr:g}): "
                                   "two people cannot share a name")
    else:
        names, known = gallery.embeddings(embedder.name, today=dt.date.min)
        if len(known):
            dist = np.linalg.norm(known[:, None, :] - vecs[None, :, :], axis=2).min(axis=1)
            close = sorted({n for n, d in zip(names, dist) if d < thr})
            if close:
                warnings.append(f"{name!r} looks like {', '.join(map(repr, close))}, already enrolled: "
                                "the same person under two names?")
    if append:
        gallery.append(name, vecs, embedder.name)
        person = next(p for p in gallery.people() if p.name == name)
    else:
        person = gallery.add(name, vecs, embedder.name, purpose=purpose, expires=expires, consent_date=consent_date)
    return person, warnings
