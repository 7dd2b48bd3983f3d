"""All-or-nothing output files.

A half-written anonymized file is worse than none: a player may show the frames that were
written before a crash, and a later run may mistake it for a finished result. So every writer
in veil writes to a hidden temporary file next to the target and renames it over the target
only once it is complete (``os.replace`` is atomic on the same filesystem). On *any* exception,
``KeyboardInterrupt`` included, the temporary file is deleted and the exception re-raised.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(dst: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``dst``'s directory; rename it over ``dst`` on success.

    ``suffix`` is the temporary file's extension (default: ``dst``'s), so that libraries that
    pick a format from the name still do. The file exists (empty) when the block starts and
    gets the usual umask-based permissions, not ``mkstemp``'s 0600.

    Raises :class:`OutputError` (one line) when the directory is missing, not a directory or
    not writable, or when ``dst`` is a directory.
    """
    dst = Path(dst)
    if dst.is_dir():
        raise OutputError(f"output path is a directory: {dst}")
    tmp = _create_temp(dst, dst.suffix if suffix is None else suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _create_temp(dst: Path, suffix: str) -> Path:
    parent = dst.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OutputError(f"output directory {what}: {parent} (for {dst.name})")
    for _ in range(100):
        tmp = parent / f".{dst.stem}.{secrets.token_hex(4)}.part{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write to {parent}: {exc.strerror} (for {dst.name})") from None
        os.close(fd)
        return tmp
    raise OutputError(f"cannot create a temporary file in {parent} (for {dst.name})")


def _fsync(path: Path) -> None:
    """Flush the finished file to disk so a crash after the rename cannot leave it empty."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise OutputError(f"cannot reopen {path.name}: {exc.strerror}") from None
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (e.g. certain FUSE mounts) do not support fsync
    finally:
        os.close(fd)
