"""Build the identify stage from ``config.identify``, checking the names it is given against
the gallery (the identity rules are built by :func:`veil.policy.build.build_policy`)."""

from __future__ import annotations

import datetime as dt
import logging

from ..config import IdentifyConfig
from .embedder import build_embedder
from .gallery import Gallery, GalleryError
from .track_identity import Matcher, TrackIdentifier

log = logging.getLogger("veil")

__all__ = ["build_identify_stage"]


def build_identify_stage(cfg: IdentifyConfig) -> TrackIdentifier:
    embedder = build_embedder(cfg.embedder)
    today = dt.date.today()
    with Gallery(cfg.gallery, cfg.key_file) as gallery:
        people = {p.name: p for p in gallery.people()}
        names, vecs = gallery.embeddings(embedder.name, today=today)
    flag = "--only" if cfg.only else "--spare"
    for name in (*cfg.spare, *cfg.only):
        if name not in people:
            known = ", ".join(sorted(people)) or "nobody"
            raise GalleryError(f"{flag} {name!r}: nobody is enrolled under that name (enrolled: {known})")
        p = people[name]
        if p.expired(today):
            if cfg.only:
                raise GalleryError(f"--only {name!r}: the gallery entry expired on {p.expires}; renew it (remove and "
                                   "add again) or drop the flag: an expired entry is not matched, so that face would stay visible")
            log.warning("the gallery entry for %r expired on %s: that person is anonymized", name, p.expires)
        elif name not in names:
            raise GalleryError(f"{flag} {name!r}: no embeddings for the {embedder.name} model; enroll again")
    if cfg.spare_enrolled and not names:
        log.warning("--spare-enrolled: nobody is enrolled (or every entry expired): every face is anonymized")
    threshold = cfg.match_threshold or embedder.threshold
    matcher = Matcher(names, vecs, threshold, cfg.uncertain_margin)
    del vecs
    return TrackIdentifier(embedder, matcher, reverify_frames=cfg.reverify_frames, min_gap=cfg.min_gap,
                           min_face_px=cfg.id_min_face_px)
