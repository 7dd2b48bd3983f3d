"""Exceptions raised by veil, and the CLI exit code each maps to.

    VeilError                       base class; the CLI prints its message on one line
    ├── ConfigError          (2)    invalid settings or flags
    ├── InputError           (3)    the input cannot be used
    │   ├── MediaNotFoundError      path does not exist
    │   ├── UnsupportedMediaError   not an image or video veil reads (or unsupported codec)
    │   ├── CorruptMediaError       empty, truncated or undecodable file
    │   └── MediaTooLargeError      decompression bomb / dimensions over the limit
    ├── OutputError          (4)    the output cannot be written (missing dir, read-only, exists,
    │                               or appeared while the run was working)
    ├── ModelError           (5)    model file missing, wrong checksum or wrong shape
    ├── ProcessingError      (6)    something failed mid-run; nothing was written
    └── AuditError           (7)    the audit log or its signing key cannot be used (corrupt,
                                    tampered, wrong/missing key, disk full): nothing is processed

Every error that stops a file run guarantees that no partial output is left behind: writers
go to a temporary file that is only renamed over the target once it is complete. Live
streams (``veil stream``) are the one exception, by design: the frames anonymized before a
disconnect or Ctrl-C are kept in a finalized file (every one of them went through
detection), and the error says so.
"""

from __future__ import annotations

__all__ = [
    "VeilError",
    "ConfigError",
    "InputError",
    "MediaNotFoundError",
    "UnsupportedMediaError",
    "CorruptMediaError",
    "MediaTooLargeError",
    "OutputError",
    "ModelError",
    "ProcessingError",
    "AuditError",
]


class VeilError(Exception):
    """Base class of all errors veil raises on purpose."""

    exit_code = 1


class ConfigError(VeilError, ValueError):
    exit_code = 2
    #: the config setting at fault (``render.color``) and the reason without it, when known:
    #: set by :func:`veil.config.validated`; the CLI names the flag instead of the setting
    setting: str | None = None
    reason: str = ""


class InputError(VeilError):
    exit_code = 3


class MediaNotFoundError(InputError, FileNotFoundError):
    pass


class UnsupportedMediaError(InputError):
    pass


class CorruptMediaError(InputError):
    pass


class MediaTooLargeError(InputError):
    pass


class OutputError(VeilError):
    exit_code = 4


class ModelError(VeilError):
    exit_code = 5


class ProcessingError(VeilError):
    exit_code = 6


class AuditError(VeilError):
    exit_code = 7
