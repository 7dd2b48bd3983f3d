"""End-to-end evaluation of selective anonymization (``--spare`` / ``--only``) on built clips.

A verification ROC of the embedder alone does not test the path a user relies on: a person
enrolled from one photo, then recognised in *video frames* showing them from *another*
photo, through veil's detector, tracker, landmarks, alignment, embedder, votes and policy.
This module builds such clips from the identity photos in ``$VEIL_DATA/reid`` and runs the
real pipeline on them.

A clip (:class:`ClipSpec`): one enrolled person (enrolled from photo A) shown from a different
photo B, plus ``others`` other people, each a head-and-shoulders cut-out of its photo scaled
to a ``face_px`` face, sliding across a seeded textured background; encoded to H.264 and
decoded again (compression artefacts as in a real file). The true face box of every person
in every frame is known, so each pipeline face is attributed to a person (IoU >= 0.3).

Results per clip and person: frames kept / anonymized / not detected under ``--spare`` and
under ``--only`` (both rules read the same identify verdicts, so one pipeline run serves
both), and every distance the identify stage computed, to the enrolled person, labelled
same / different person. Nothing here stores or prints embeddings.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..boxes import box_iou
from ..faces import DETECTED, SOURCE

__all__ = ["IdentityPhoto", "ClipSpec", "identity_photos", "dev_clips", "render_clip", "run_clip", "ClipResult"]


@dataclass(frozen=True)
class IdentityPhoto:
    person: str
    path: Path


@dataclass(frozen=True)
class ClipSpec:
    """Enrol ``enrol`` photos of ``person``; the clip shows ``probe`` and ``others``."""

    person: str
    enrol: tuple[Path, ...]
    probe: Path
    others: tuple[IdentityPhoto, ...]
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.person}:{self.probe.name}"


def identity_photos(reid: Path) -> dict[str, list[Path]]:
    """Photos of one known person each, by person, from ``reid/face_recognition`` (identities.csv,
    single-person photos, partial faces left out) and ``reid/deepface`` (master.csv: people are
    the connected groups of its same-person pairs)."""
    from .privacy import read_pairs

    out: dict[str, list[Path]] = {}
    fr = reid / "face_recognition"
    if (fr / "identities.csv").is_file():
        with open(fr / "identities.csv", newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                names = r["identities_left_to_right"].split(";")
                if len(names) == 1 and "partial" not in r["file"] and (fr / r["file"]).is_file():
                    out.setdefault(names[0], []).append(fr / r["file"])
    df = reid / "deepface"
    if (df / "master.csv").is_file():
        parent: dict[str, str] = {}

        def root(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                x = parent[x]
            return x

        for p in read_pairs(df / "master.csv"):
            a, b = root(p.file_x), root(p.file_y)
            if p.same:
                parent[a] = b
        for f in sorted(parent):
            if (df / f).is_file():
                out.setdefault(f"deepface:{root(f)}", []).append(df / f)
    return {k: _distinct(sorted(v)) for k, v in sorted(out.items())}


def _distinct(paths: list[Path], boxes: dict[Path, np.ndarray] | None = None, max_bits: int = 20) -> list[Path]:
    """Drop copies of a photo (the same picture at another resolution, format or crop): a
    16x16 average hash of the image (of the face box, when ``boxes`` has it) within
    ``max_bits`` of one already kept. Showing a person from a copy of the enrolment photo
    would not test recognition."""
    import cv2

    from .privacy import load_rgb

    kept: list[tuple[Path, np.ndarray]] = []
    for p in paths:
        img = load_rgb(p)
        if boxes is not None:
            if p not in boxes:
                continue
            x1, y1, x2, y2 = np.round(boxes[p]).astype(int)
            img = img[max(y1, 0):max(y2, 1), max(x1, 0):max(x2, 1)]
        g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
        h = (g > np.median(g)).ravel()
        if all(int((h != k).sum()) > max_bits for _, k in kept):
            kept.append((p, h))
    return [p for p, _ in kept]


def dev_clips(photos: dict[str, list[Path]], others: int = 2, enrol_photos: int = 1, seed: int = 0) -> list[ClipSpec]:
    """One clip per person with more photos than ``enrol_photos``: enrolled from the first
    ``enrol_photos``, shown from the next one, with ``others`` other people (drawn with a
    fixed seed from everyone else) in the same clip."""
    rng = np.random.default_rng(seed)
    people = sorted(photos)
    specs = []
    for k, person in enumerate(people):
        ph = photos[person]
        if len(ph) <= enrol_photos:
            continue
        pool = [p for p in people if p != person]
        picks = rng.choice(len(pool), size=min(others, len(pool)), replace=False)
        other = tuple(IdentityPhoto(pool[i], photos[pool[i]][int(rng.integers(len(photos[pool[i]])))]) for i in picks)
        specs.append(ClipSpec(person, tuple(ph[:enrol_photos]), ph[enrol_photos], other, seed + k))
    return specs


# -- rendering ---------------------------------------------------------------------------
def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A textured, coloured background (smoothed noise at several scales plus stripes)."""
    import cv2

    img = np.zeros((h, w, 3), np.float32)
    for scale, amp in ((64, 90), (16, 50), (4, 25)):
        small = rng.uniform(-1, 1, (h // scale + 2, w // scale + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    img += 20 * np.sin(xx / 7.0 + yy / 13.0)[..., None]
    return np.clip(img + 128, 0, 255).astype(np.uint8)


@dataclass
class _Sprite:
    rgba: np.ndarray  # (s, s, 4) float32, alpha 0..1
    face: np.ndarray  # face box x1 y1 x2 y2 inside the sprite


def _sprite(rgb: np.ndarray, box: np.ndarray, face_px: int) -> _Sprite:
    """A head-and-shoulders cut-out around ``box``, scaled so the face box's short side is
    ``face_px``, with a feathered elliptical alpha."""
    import cv2

    x1, y1, x2, y2 = box
    side = min(x2 - x1, y2 - y1)
    s = face_px / side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.15 * (y2 - y1)
    half = 1.0 * max(x2 - x1, y2 - y1)
    # affine: source point -> sprite point
    out = int(round(2 * half * s))
    m = np.array([[s, 0, out / 2 - s * cx], [0, s, out / 2 - s * cy]], np.float32)
    img = cv2.warpAffine(rgb, m, (out, out), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    yy, xx = np.mgrid[0:out, 0:out]
    r = np.sqrt(((xx - out / 2) / (0.46 * out)) ** 2 + ((yy - out / 2) / (0.5 * out)) ** 2)
    alpha = np.clip((1.0 - r) / 0.12, 0, 1)
    face = np.array([s * x1 + m[0, 2], s * y1 + m[1, 2], s * x2 + m[0, 2], s * y2 + m[1, 2]], np.float32)
    return _Sprite(np.dstack([img.astype(np.float32), alpha.astype(np.float32)]), face)


def render_clip(spec: ClipSpec, boxes: dict[Path, np.ndarray], out: Path, *, size: tuple[int, int] = (800, 450),
                frames: int = 60, face_px: int = 110, fps: int = 30) -> list[dict[str, np.ndarray]]:
    """Write the clip to ``out`` (H.264 mp4); returns per frame ``{person: true face box}``.
    ``boxes``: the face box of each photo (from the detector on the photo)."""
    import av

    from .privacy import load_rgb

    w, h = size
    rng = np.random.default_rng(spec.seed)
    bg = _background(h, w, rng)
    cast = [IdentityPhoto(spec.person, spec.probe), *spec.others]
    order = rng.permutation(len(cast))
    sprites, paths = [], []
    lane_w = w / len(cast)
    for slot, k in enumerate(order):
        person = cast[int(k)]
        sp = _sprite(load_rgb(person.path), boxes[person.path], face_px)
        s = sp.rgba.shape[0]
        # a conveyor: everyone slides right by one lane over the clip, so the first person
        # enters from the left edge and the last one leaves at the right edge
        x0 = slot * lane_w + (lane_w - s) / 2 - 0.5 * lane_w
        y0 = (h - s) / 2 + rng.uniform(-0.1, 0.1) * h
        speed = lane_w / frames  # px per frame
        sprites.append((person.person, sp))
        paths.append((x0, y0, speed, rng.uniform(0, 2 * np.pi)))
    truth: list[dict[str, np.ndarray]] = []
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": "23", "preset": "veryfast"}
        for t in range(frames):
            img = bg.astype(np.float32)
            where = {}
            for (name, sp), (x0, y0, speed, phase) in zip(sprites, paths):
                s = sp.rgba.shape[0]
                x = int(round(x0 + speed * t))
                y = int(round(y0 + 6 * np.sin(phase + t / 9)))
                xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + s, w), min(y + s, h)
                if xb <= xa or yb <= ya:
                    continue
                patch = sp.rgba[ya - y:yb - y, xa - x:xb - x]
                a = patch[..., 3:]
                img[ya:yb, xa:xb] = a * patch[..., :3] + (1 - a) * img[ya:yb, xa:xb]
                where[name] = sp.face + np.array([x, y, x, y], np.float32)
            truth.append(where)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return truth


# -- running -----------------------------------------------------------------------------
@dataclass
class PersonTally:
    """Face-frames of one person in one clip: all of them, and those in full view (the face
    box inside the picture; a face cut by the frame's edge is anonymized until it is in
    full view, by design)."""

    enrolled: bool
    frames: int = 0  # frames in which the face is (at least partly) in the picture
    detected: int = 0
    spare_kept: int = 0
    only_kept: int = 0
    full_view: int = 0
    full_view_detected: int = 0
    full_view_spare_kept: int = 0
    full_view_only_kept: int = 0


@dataclass
class ClipResult:
    clip: str
    person: str
    people: dict[str, PersonTally]
    distances: list[tuple[bool, float]] = field(default_factory=list)  # (same person, distance to the enrolled)
    reasons: dict[str, list[str]] = field(default_factory=dict)  # a few spare-rule reasons per person
    embeddings: int = 0
    face_frames: int = 0
    sampled: list[tuple[bool, float]] = field(default_factory=list)  # every full-view face every 10th frame

    def as_dict(self) -> dict:
        return {"clip": self.clip, "person": self.person, "embeddings": self.embeddings, "face_frames": self.face_frames,
                "sampled": [[bool(s), round(float(d), 4)] for s, d in self.sampled],
                "people": {k: {f: (bool(x) if f == "enrolled" else int(x)) for f, x in vars(v).items()}
                           for k, v in self.people.items()},
                "distances": [[bool(s), round(float(d), 4)] for s, d in self.distances], "reasons": self.reasons}


class _Recorder:
    """Wraps the identify stage's embedder: keeps the distance of every face it embeds to
    the enrolled person's vectors, with the face's true identity (vectors are dropped)."""

    def __init__(self, stage, enrolled: np.ndarray, truth: list[dict[str, np.ndarray]], person: str):
        self.stage, self.inner, self.enrolled = stage, stage.embedder, enrolled
        self.name, self.dim, self.threshold = self.inner.name, self.inner.dim, self.inner.threshold
        self.truth, self.person = truth, person
        self.distances: list[tuple[bool, float]] = []

    def embed_faces(self, rgb, faces):
        vecs = self.inner.embed_faces(rgb, faces)
        truth = self.truth[self.stage._frame - 1]  # the frame being annotated (frames arrive in order)
        for box, v in zip(faces.xyxy, vecs):
            who = _who(box, truth)
            if who is not None:
                d = float(np.linalg.norm(self.enrolled - v[None, :], axis=1).min())
                self.distances.append((who == self.person, d))
        return vecs

    def __getattr__(self, item):
        return getattr(self.inner, item)


def _who(box: np.ndarray, truth: dict[str, np.ndarray], min_iou: float = 0.3) -> str | None:
    if not truth:
        return None
    names = list(truth)
    iou = box_iou(np.stack([truth[n] for n in names]), box[None])[:, 0]
    k = int(np.argmax(iou))
    return names[k] if iou[k] >= min_iou else None


def run_clip(spec: ClipSpec, config, workdir: Path, boxes: dict[Path, np.ndarray], *, frames: int = 60,
             face_px: int = 110, sample_every: int = 10) -> ClipResult:
    """Enrol, render, run the pipeline with ``--spare person``, score both rules."""
    import av

    from ..faces import KEEP
    from ..identify import Gallery
    from ..identify.track_identity import TrackIdentifier
    from ..pipeline import Pipeline
    from ..policy import AllMustKeep, AnonymizeAll
    from ..policy.identity import OnlyIdentities

    gpath = workdir / f"g{spec.seed}.sqlite"
    with Gallery(gpath, create=True) as g:
        g.enroll(spec.person, list(spec.enrol))
    clip = workdir / f"clip{spec.seed}.mp4"
    truth = render_clip(spec, boxes, clip, frames=frames, face_px=face_px)
    cfg = config.updated(identify={**config.identify.model_dump(), "gallery": gpath, "spare": [spec.person], "only": [],
                                   "spare_enrolled": False})
    pipe = Pipeline(cfg)
    stage = pipe.annotators[0]
    assert isinstance(stage, TrackIdentifier)  # the only stage of an identify config
    with Gallery(gpath) as g:
        _, enrolled = g.embeddings(stage.embedder.name)
    rec = _Recorder(stage, enrolled, truth, spec.person)
    stage.embedder = rec
    only = AllMustKeep(AnonymizeAll(cfg.detect.threshold), [OnlyIdentities([spec.person])])
    tally = {spec.person: PersonTally(True), **{o.person: PersonTally(False) for o in spec.others}}
    reasons: dict[str, list[str]] = {}

    originals: dict[int, np.ndarray] = {}

    def decoded():
        with av.open(str(clip)) as c:
            for i, f in enumerate(c.decode(video=0)):
                rgb = f.to_ndarray(format="rgb24")
                if i % sample_every == sample_every // 2:
                    originals[i] = rgb
                yield rgb

    sampled: list[tuple[bool, float]] = []
    for i, res in enumerate(pipe.run(decoded(), 30.0)):
        faces = res.faces
        if i in originals:
            sampled += _sample_distances(rec, originals.pop(i), faces, truth[i], spec.person)
        decided_only = only.decide(faces) if len(faces) else faces
        h, w = res.frame.shape[:2]
        for name, box in truth[i].items():
            t = tally[name]
            full = bool(box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h)
            t.frames += 1
            t.full_view += full
            if not len(faces):
                continue
            iou = box_iou(faces.xyxy, box[None])[:, 0]
            j = int(np.argmax(iou))
            if iou[j] < 0.3:
                continue
            spared, only_kept = faces.decision[j] == KEEP, decided_only.decision[j] == KEEP
            t.detected += 1
            t.spare_kept += spared
            t.only_kept += only_kept
            t.full_view_detected += full
            t.full_view_spare_kept += full and spared
            t.full_view_only_kept += full and only_kept
            r = reasons.setdefault(name, [])
            if str(faces.reason[j]) not in r and len(r) < 3:
                r.append(str(faces.reason[j]))
    st = stage.stats
    return ClipResult(spec.name, spec.person, tally, rec.distances, reasons, int(st["embeddings"]), int(st["face_frames"]),
                      sampled)


def _sample_distances(rec: "_Recorder", rgb: np.ndarray, faces, truth: dict[str, np.ndarray], person: str):
    """Distances to the enrolled person of every detected face in full view of one frame,
    embedded exactly as the identify stage embeds (same rows, same embedder): more samples
    for the distributions than the stage's sparse embeddings give."""
    h, w = rgb.shape[:2]
    rows, who = [], []
    for i in range(len(faces)):
        if faces.data.get(SOURCE) is not None and faces.data[SOURCE][i] != DETECTED:
            continue
        name = _who(faces.xyxy[i], truth)
        box = faces.xyxy[i]
        if name is None or np.isnan(faces.landmarks[i]).any() or box[0] <= 0 or box[1] <= 0 or box[2] >= w or box[3] >= h:
            continue
        rows.append(i)
        who.append(name)
    if not rows:
        return []
    vecs = rec.inner.embed_faces(rgb, faces[np.array(rows)])
    return [(n == person, float(np.linalg.norm(rec.enrolled - v[None, :], axis=1).min())) for n, v in zip(who, vecs)]


def photo_boxes(paths: Sequence[Path], detector) -> dict[Path, np.ndarray]:
    """The largest face box of each photo (the truth the clip's boxes derive from)."""
    from .privacy import load_rgb

    out = {}
    for p in paths:
        faces = detector.detect([load_rgb(p)], 0.5)[0]
        if len(faces):
            wh = faces.wh
            out[p] = faces.xyxy[int(np.argmax(wh[:, 0] * wh[:, 1]))].astype(np.float32)
    return out


def run_identity_eval(reid: Path, config, *, limit: int | None = None, frames: int = 60, face_px: int = 110,
                      others: int = 2, enrol_photos: int = 1, progress: Callable[[str], None] | None = None) -> dict:
    """All dev clips; returns the raw results (see :mod:`veil.eval.identity_report`)."""
    from ..detect import build_detector

    from ..errors import InputError

    photos = identity_photos(reid)
    if sum(len(v) > 1 for v in photos.values()) == 0:
        raise InputError(f"{reid}: no identity photos (face_recognition/identities.csv, deepface/master.csv) with two "
                         "photos of a person; set VEIL_DATA or give the folder")
    det = build_detector(config.detect.model_copy(update={"tile": False}), batch=1)
    boxes = photo_boxes(sorted({p for v in photos.values() for p in v}), det)
    del det
    photos = {k: v for k, v in ((k, _distinct(v, boxes)) for k, v in photos.items()) if v}
    specs = dev_clips(photos, others=others, enrol_photos=enrol_photos)
    if limit:
        specs = specs[:limit]
    results = []
    with tempfile.TemporaryDirectory(prefix="veil-identity-") as tmp:
        for spec in specs:
            if progress:
                progress(spec.name)
            results.append(run_clip(spec, config, Path(tmp), boxes, frames=frames, face_px=face_px))
    from ..identify import build_embedder

    emb = build_embedder(config.identify.embedder)
    return {"clips": [r.as_dict() for r in results], "frames": frames, "face_px": face_px, "others": others,
            "enrol_photos": enrol_photos, "people": len(photos), "embedder": emb.name,
            "threshold": config.identify.match_threshold or emb.threshold, "margin": config.identify.uncertain_margin}
