"""Enrolment: photos in, checked embeddings out, into the gallery.

A photo is refused, with the reason, when veil finds no face in it, several faces, or a
face too small (short side under :data:`MIN_FACE_PX`) or too blurry (sharpness of the
aligned face chip under :data:`MIN_SHARPNESS`) to give a reliable embedding. Photos enrolled
together must show the same person, and photos appended to someone must match them: a
gallery never holds two people under one name.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DetectConfig
from .embedder import Embedder, face_chip_sharpness
from .gallery import Gallery, GalleryError, Person

__all__ = ["embed_photo", "enroll", "MIN_FACE_PX", "MIN_SHARPNESS", "ENROLL_MIN_SCORE"]

#: smallest face (short side of the detector box, pixels) accepted for enrolment
MIN_FACE_PX = 48
#: lowest variance of the Laplacian of the 150 px aligned face chip accepted for enrolment
MIN_SHARPNESS = 20.0
#: detector score above which a face counts (for "several faces" too)
ENROLL_MIN_SCORE = 0.5


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
    side = float(faces.wh[0].min())
    if side < MIN_FACE_PX:
        raise GalleryError(f"{path}: the face is too small ({side:.0f} px, need {MIN_FACE_PX}); use a closer or larger photo")
    chip = getattr(embedder, "chip", None)
    if chip is not None:
        sharp = face_chip_sharpness(chip(rgb, faces, 0))
        if sharp < MIN_SHARPNESS:
            raise GalleryError(f"{path}: the face is too blurry (sharpness {sharp:.0f}, need {MIN_SHARPNESS:.0f}); use a sharper photo")
    return embedder.embed_faces(rgb, faces)[0]


def enroll(gallery: Gallery, name: str, photos: Sequence[Path | str], embedder: Embedder, *,
           purpose: str | None = None, expires: dt.date | None = None, consent_date: dt.date | None = None,
           append: bool = False, detect: DetectConfig | None = None) -> tuple[Person, list[str]]:
    """Enroll ``name`` from ``photos`` (all must pass); returns the person and warnings.

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
    vecs = np.stack([embed_photo(p, embedder, det) for p in photos])
    thr = embedder.threshold + 0.1  # the upper end of the uncertainty band
    warnings: list[str] = []
    for i in range(len(vecs)):
        for j in range(i + 1, len(vecs)):
            d = float(np.linalg.norm(vecs[i] - vecs[j]))
            if d >= thr:
                raise GalleryError(f"{photos[i]} and {photos[j]} do not show the same person (distance {d:.2f} >= {thr:g}); "
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
