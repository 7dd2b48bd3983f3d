"""Known monocular depth models and ``fetch``: download by URL, verify sha256, install atomically.

veil never downloads at run time; ``veil models fetch`` is an explicit, one-off step for users
who have internet. The file is streamed to a temporary file next to the target, hashed on
the way, and renamed into place only when its sha256 matches; anything else removes it.
A model without a pinned checksum needs ``--sha256`` (taken from the model's release page):
an unverified download is never installed.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

__all__ = ["DepthModelSpec", "DEPTH_MODELS", "models_dir", "fetch_model", "installed_path"]


@dataclass(frozen=True)
class DepthModelSpec:
    name: str
    url: str
    sha256: str | None  #: None = not pinned here; fetch then needs --sha256
    filename: str
    kind: str  #: "midas" | "depth-anything"
    license: str
    note: str


DEPTH_MODELS: dict[str, DepthModelSpec] = {
    # sha256 of the v2_1 release asset (66,764,249 bytes): not hashed here (no copy offline); the
    # same value is pinned by many independent projects that download this file
    "midas-small": DepthModelSpec(
        "midas-small", "https://github.com/isl-org/MiDaS/releases/download/v2_1/model-small.onnx",
        "2d8c6cb8f415229daf1eb041024208e2608c9f98e17c81cc7c6ecb449c56fd58",
        "midas_v21_small_256.onnx", "midas", "MIT", "MiDaS v2.1 small, 256x256, relative inverse depth"),
    "depth-anything-v2-small": DepthModelSpec(
        "depth-anything-v2-small", "https://huggingface.co/onnx-community/depth-anything-v2-small/resolve/main/onnx/model.onnx",
        None, "depth_anything_v2_small.onnx", "depth-anything", "Apache-2.0",
        "Depth Anything V2 small (ViT-S), relative inverse depth"),
}


def models_dir() -> Path:
    """``models`` in veil's data directory (``$VEIL_HOME``, else the per-user data directory)."""
    from ..dirs import data_dir

    return data_dir() / "models"


def installed_path(name: str) -> Path | None:
    spec = DEPTH_MODELS.get(name)
    if spec is None:
        return None
    p = models_dir() / spec.filename
    return p if p.is_file() else None


def fetch_model(name: str, url: str | None = None, sha256: str | None = None, dest_dir: Path | None = None,
                timeout: float = 30.0) -> Path:
    """Download model ``name`` (or any ``url``), verify its sha256, install it; returns the path."""
    spec = DEPTH_MODELS.get(name)
    if not url:
        if spec is None:
            raise ModelError(f"unknown model {name!r}; known: {', '.join(DEPTH_MODELS)} (or pass --url and --sha256)")
        url = spec.url
    expected = (sha256 or (spec.sha256 if spec else None) or "").lower().strip()
    if not expected:
        raise ModelError(f"no pinned sha256 for {name!r}: pass --sha256 (from the model's release page); "
                         "veil does not install unverified downloads")
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ModelError(f"--sha256 must be 64 hex digits, got {expected!r}")
    if not url.startswith(("https://", "http://")):
        raise ModelError(f"only http(s) URLs can be fetched, got {url!r}")
    folder = Path(dest_dir) if dest_dir else models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (spec.filename if spec else (Path(url.split("?")[0]).name or f"{name}.onnx"))
    tmp = folder / f".{target.name}.part-{os.getpid()}"
    h = hashlib.sha256()
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    h.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise ModelError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ModelError(f"cannot download {url} ({' '.join(str(reason).split())}); are you offline? "
                             f"Download it elsewhere and pass the file with --depth-model") from None
        got = h.hexdigest()
        if got != expected:
            raise ModelError(f"checksum mismatch for {url}: expected sha256 {expected[:12]}…, got {got[:12]}…; "
                             "nothing installed")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
