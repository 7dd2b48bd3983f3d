"""Selective anonymization by identity (face re-identification).

* :mod:`.embedder`: the :class:`Embedder` protocol and dlib's 128-d descriptor;
* :mod:`.gallery`: enrolled people in SQLite, embeddings encrypted at rest;
* :mod:`.enroll`: checked enrolment from photos;
* :mod:`.track_identity`: the identify stage (per-track embedding and voting);
* :mod:`veil.policy.identity`: the spare / only rules.
"""

from .embedder import DLIB_THRESHOLD, DlibEmbedder, Embedder, build_embedder
from .enroll import embed_photo, enroll
from .gallery import Gallery, GalleryError, GalleryKeyError, Person, default_gallery_path
from .track_identity import Matcher, TrackIdentifier

__all__ = ["Embedder", "DlibEmbedder", "DLIB_THRESHOLD", "build_embedder", "Gallery", "GalleryError",
           "GalleryKeyError", "Person", "default_gallery_path", "enroll", "embed_photo", "Matcher", "TrackIdentifier"]
