"""What kind of media a path is, where its output goes, and walking directory trees."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

from ..errors import InputError, MediaNotFoundError, OutputError, UnsupportedMediaError

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "media_kind", "default_output", "walk_media", "check_output_path",
           "make_folder"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
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


def walk_media(root: Path, on_skip: Callable[[Path, str], None] | None = None,
               on_error: Callable[[Path, InputError], None] | None = None) -> Iterator[Path]:
    """Media files below ``root``, sorted; hidden files and folders are left out.

    Symbolic links to folders are not followed (they can loop, or lead into the output
    folder): each is passed to ``on_skip(path, reason)`` so that the caller can say so. A
    sub-folder that cannot be read is an :class:`InputError`, passed to ``on_error(path, error)``
    (the walk goes on) or raised; a ``root`` that cannot be read is always raised.
    """
    root = Path(root)
    if not root.exists():
        raise MediaNotFoundError(f"{root}: no such file or directory")
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        error = InputError(f"{exc.filename}: cannot read the folder ({exc.strerror or exc})")
        if Path(exc.filename) == root or on_error is None:
            raise error
        on_error(Path(exc.filename), error)

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        here = Path(folder)
        dirs[:] = [d for d in sorted(dirs) if not d.startswith(".") and not _linked_folder(here / d, on_skip)]
        found += [here / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in MEDIA_SUFFIXES
                  and (here / f).is_file()]
    yield from sorted(found)


def _linked_folder(path: Path, on_skip: Callable[[Path, str], None] | None) -> bool:
    if not path.is_symlink():
        return False
    if on_skip:
        on_skip(path, "symbolic link to a folder, not followed; skipped (give it as an input of its own)")
    return True


def check_output_path(src: Path, dst: Path) -> None:
    """Refuse writing over the input, or into a folder that does not exist."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: output would overwrite the input")
    if not dst.parent.is_dir():
        raise OutputError(f"{dst.parent}: output folder does not exist")


def make_folder(folder: Path) -> None:
    """``mkdir -p`` for outputs, with one-line errors (a read-only disk, a file in the way)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror or exc
        raise OutputError(f"{folder}: cannot create the output folder ({what})") from None
