"""Per-frame records on disk while a run goes, so that memory stays flat.

A report lists every face of every frame; kept in memory, that is ~8 KB per frame, 1.7 GB for a
two-hour video, and without bound for a 24/7 stream. So the records are appended, one JSON line
per frame, to an anonymous temporary file in the report's folder (not ``/tmp``, which is often
RAM), and copied into the report when it is written. The file has no name (``O_TMPFILE`` where
the system has it): a crash leaves nothing behind. Creating it is also the early check that the
report can be written at all, before hours of work.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from ..errors import OutputError

__all__ = ["FrameLog"]


class FrameLog:
    """An append-only file of JSON lines; items read back their own byte range."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise OutputError(f"{folder}: report folder {what}")
        try:
            self._fh: IO[bytes] = tempfile.TemporaryFile(dir=folder, prefix=".veil-frames-")
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write the report there ({exc.strerror or exc})") from None
        self._end = 0

    def tell(self) -> int:
        """Where the next record will start."""
        return self._end

    def append(self, record: dict[str, Any]) -> None:
        self._fh.seek(self._end)
        self._fh.write(json.dumps(record).encode("utf-8") + b"\n")
        self._end = self._fh.tell()

    def truncate(self, offset: int) -> None:
        """Drop everything from ``offset`` on (the records of a failed item)."""
        self._fh.truncate(offset)
        self._end = offset

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """The records between two offsets, one JSON document (bytes) at a time."""
        self._fh.flush()
        self._fh.seek(start)
        while self._fh.tell() < end:
            line = self._fh.readline()
            if not line:
                break
            yield line.rstrip(b"\n")

    def close(self) -> None:
        self._fh.close()
