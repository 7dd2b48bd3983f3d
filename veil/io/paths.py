"""What kind of media a path is, where its output goes, and walking directory trees."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import MediaNotFoundError, OutputError, UnsupportedMediaError

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "media_kind", "default_output", "walk_media", "check_output_path"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"})
SUFFIX = "_anonymized"


def media_kind(path: Path) -> str:
    """``"image"`` or ``"video"`` from the file suffix; anything else is unsupported."""
    s = Path(path).suffix.lower()
    if s in IMAGE_SUFFIXES:
        return "image"
    if s in VIDEO_SUFFIXES:
        return "video"
    raise UnsupportedMediaError(f"{path}: not a supported image or video file (suffix {s or 'none'!r})")


def default_output(src: Path) -> Path:
    """``photo.jpg`` -> ``photo_anonymized.jpg``; ``holiday/`` -> ``holiday_anonymized/``."""
    src = Path(src)
    if src.is_dir():
        return src.with_name(src.name + SUFFIX)
    return src.with_name(src.stem + SUFFIX + src.suffix)


def walk_media(root: Path) -> Iterator[Path]:
    """Media files below ``root`` (sorted, hidden files and folders skipped)."""
    root = Path(root)
    if not root.exists():
        raise MediaNotFoundError(f"{root}: no such file or directory")
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            yield p


def check_output_path(src: Path, dst: Path) -> None:
    """Refuse writing over the input, or into a folder that does not exist."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: output would overwrite the input")
    if not dst.parent.is_dir():
        raise OutputError(f"{dst.parent}: output folder does not exist")
