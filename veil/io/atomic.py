"""All-or-nothing output files.

A half-written anonymized file is worse than none: a player may show the frames that were
written before a crash, and a later run may mistake it for a finished result. So every writer
in veil writes to a hidden temporary file next to the target and renames it over the target
only once it is complete (``os.replace`` is atomic on the same filesystem). On *any* exception,
``KeyboardInterrupt`` (Ctrl-C, and SIGTERM in the CLI) included, the temporary file is deleted
and the exception re-raised.

A process killed outright (SIGKILL, the OOM killer, a power cut) cannot delete anything, so
its temporary file stays behind: ``.NAME.veil-PID-RANDOM.part.EXT``. The first time a veil
process writes into a folder it removes such leftovers there, and logs each one, when all of
these hold: the name has exactly that form (the ``veil-`` marker and a pid); it is a regular
file (not a link) owned by the user running veil; process PID no longer exists; and no
process holds the file's lock. Every writer holds an exclusive ``flock`` on its temporary
file for as long as it writes; the kernel drops it when the writer dies, however it dies. The
lock is what protects a live writer whose pid means nothing here (a veil in another container
writing into a shared folder; on a network share, as far as the file system shares locks).
A file whose lock cannot be taken, on a file system without locks too, is left alone.
Without ``fcntl`` (Windows) there is no lock and no cleanup.

Without ``replace``, the finished file *claims* the name instead: it is hard-linked onto the
target, which fails if anything is there by then. Checking for an existing output when a run
starts is not enough: two runs into one output both pass that check, and a plain rename lets
the later one win silently while the earlier one's report describes a file that is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_output", "remove_stale_parts"]

log = logging.getLogger("veil")

#: A temporary file of a veil writer: ``.<stem>.veil-<pid>-<8 hex>.part<suffix>``.
_PART_RE = re.compile(r"\..*\.veil-(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{8}\.part(\.[^.]*)?")
_swept: set[str] = set()  # folders this process has cleaned up already (once is enough)
_swept_lock = threading.Lock()


@contextlib.contextmanager
def atomic_output(dst: Path, suffix: str | None = None, replace: bool = True,
                  keep_on_conflict: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``dst``'s directory; rename it over ``dst`` on success.

    ``suffix`` is the temporary file's extension (default: ``dst``'s), so that libraries that
    pick a format from the name still do. The file exists (empty) when the block starts and
    gets the usual umask-based permissions, not ``mkstemp``'s 0600. The first call for a
    folder removes temporary files left there by killed veil processes (module docstring).

    With ``replace=False`` an existing ``dst`` is never replaced, even one that appeared while
    the block ran (another run writing the same output): :class:`OutputError` is raised and
    the temporary file deleted -- or, with ``keep_on_conflict`` (a live recording, which cannot
    be made again), kept beside ``dst`` under a new visible name that the error gives.

    Raises :class:`OutputError` (one line) when the directory is missing, not a directory or
    not writable, or when ``dst`` is a directory.
    """
    dst = Path(dst)
    if dst.is_dir():
        raise OutputError(f"output path is a directory: {dst}")
    _check_parent(dst)
    _sweep_once(dst.parent)
    tmp, lock_fd = _create_temp(dst, dst.suffix if suffix is None else suffix)
    try:
        yield tmp
        _fsync(tmp)
        if replace:
            os.replace(tmp, dst)
        else:
            try:
                _claim(tmp, dst)
            except OutputError as exc:
                if not keep_on_conflict:
                    raise
                kept = dst.with_name(f"{dst.stem}.veil-{os.getpid()}-{secrets.token_hex(4)}{dst.suffix}")
                os.replace(tmp, kept)
                raise OutputError(f"{exc}; the finished output was kept as {kept}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _claim(tmp: Path, dst: Path) -> None:
    """Give ``tmp`` the name ``dst`` only if nothing has that name: a hard link, which the
    kernel refuses atomically when ``dst`` exists. Filesystems without hard links (FAT, some
    network mounts) get an exclusively created placeholder that the rename then replaces."""
    try:
        try:
            os.link(tmp, dst)
        except FileExistsError:
            raise
        except OSError:  # no hard links here
            _claim_with_placeholder(tmp, dst)
            return
    except FileExistsError:
        raise OutputError(f"{dst}: output appeared while this run was working (another run writing the same "
                          "file?); not replaced (use --overwrite to replace it)") from None
    except OSError as exc:
        raise OutputError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    with contextlib.suppress(OSError):
        tmp.unlink()


def _claim_with_placeholder(tmp: Path, dst: Path) -> None:
    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            dst.unlink()  # our own empty placeholder
        raise


def remove_stale_parts(folder: Path) -> list[Path]:
    """Delete the temporary files that killed veil processes left in ``folder``; return them.

    Only files that pass every check in the module docstring are removed; anything else
    (another program's file, a live writer's, one that cannot be checked) is left alone.
    """
    if fcntl is None:
        return []
    removed = []
    try:
        names = [e.name for e in os.scandir(folder)]
    except OSError:
        return []
    for name in names:
        m = _PART_RE.fullmatch(name)
        if m is not None and _remove_if_abandoned(Path(folder) / name, int(m["pid"])):
            removed.append(Path(folder) / name)
            log.warning("removed %s, left by a veil run that was killed (process %s is gone)", removed[-1], m["pid"])
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stale_parts(folder)


def _remove_if_abandoned(path: Path, pid: int) -> bool:
    if pid == os.getpid() or _pid_exists(pid):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # gone, a symlink, unreadable
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a live writer holds it
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):  # replaced meanwhile
            return False
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only, nothing is sent
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # e.g. PermissionError: it exists (another user's)
        return True
    return True


def _check_parent(dst: Path) -> None:
    parent = dst.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OutputError(f"output directory {what}: {parent} (for {dst.name})")


def _create_temp(dst: Path, suffix: str) -> tuple[Path, int | None]:
    """The temporary file, and the descriptor that holds its lock (None without fcntl)."""
    parent = dst.parent
    for _ in range(100):
        tmp = parent / f".{dst.stem}.veil-{os.getpid()}-{secrets.token_hex(4)}.part{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write to {parent}: {exc.strerror} (for {dst.name})") from None
        if fcntl is None:  # an open descriptor would stop os.replace on Windows
            os.close(fd)
            return tmp, None
        with contextlib.suppress(OSError):  # no locks here: then no cleanup can take it either
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return tmp, fd
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
