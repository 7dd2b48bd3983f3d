"""Where a live run reads and writes: sources and sinks named by the user, parsed once.

Sources: ``-`` (stdin), a named pipe (FIFO), a camera (``/dev/video0`` or ``v4l2:/dev/video0``;
``avfoundation:0`` / ``dshow:video=NAME`` where FFmpeg has them), network URLs (``rtsp://``,
``rtmp://``, ``udp://``, ``tcp://``, ``srt://``, ``http(s)://`` incl. HLS ``.m3u8``), and for
testing a regular file. Sinks: a file (``.mp4 .mov .mkv .webm .ts .flv``), ``-`` (stdout,
MPEG-TS) or a network URL (``udp://`` / ``tcp://`` / ``srt://`` MPEG-TS, ``rtsp://`` pushed
to a server, ``rtmp://`` FLV). URLs are shown without their user name and password. A
``tcp://`` output gets a ``timeout`` of ``stall_timeout_s`` (unless the URL sets one) so that
a receiver that stops reading raises an OutputError instead of blocking forever.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Union
from urllib.parse import urlsplit, urlunsplit

import av

from ...errors import ConfigError, InputError, MediaNotFoundError, OutputError, UnsupportedMediaError

__all__ = ["StreamOptions", "Source", "Sink", "is_stream", "parse_sink", "parse_source", "redact_url", "refuse_existing",
           "FILE_FORMATS", "NETWORK_FORMATS", "LIVE_SCHEMES", "DEVICE_PREFIXES"]

#: URL schemes that are live streams whatever their path.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "rtp", "udp", "tcp", "srt", "rist"})
#: ``PREFIX:DEVICE`` -> FFmpeg input device format.
DEVICE_PREFIXES = {"v4l2": "v4l2", "video4linux2": "v4l2", "avfoundation": "avfoundation", "dshow": "dshow"}
#: Output container per file suffix (no .avi: it holds a constant frame rate only).
FILE_FORMATS = {
    ".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".ts": "mpegts", ".m2ts": "mpegts", ".flv": "flv",
}  # fmt: skip
#: Output container per URL scheme.
NETWORK_FORMATS = {
    "udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rist": "mpegts", "http": "mpegts", "https": "mpegts",
    "rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "flv", "rtmps": "flv",
}  # fmt: skip

_DEVICE_RE = re.compile(r"/dev/video\d+")
_HTTP_LIVE_RE = re.compile(r"(^|[/._-])live([/._-]|$)")

@dataclass(frozen=True)
class StreamOptions:
    """How a live stream is read and written (see the module docstring for the policy)."""

    max_latency_s: float = 1.0  # frames that waited longer are dropped before processing (live)
    reconnect: int = 5  # reconnection attempts for network sources, with backoff; 0 = none
    stall_timeout_s: float = 10.0  # no data / no video frame for this long = connection lost
    output_format: Optional[str] = None  # container for dst (default: by scheme / suffix; '-' -> mpegts)
    live: Optional[bool] = None  # None: live unless stdin is a regular file or src is a file
    input_format: Optional[str] = None  # force a demuxer / device type ('mpegts', 'v4l2', ...)
    input_options: Mapping[str, str] = field(default_factory=dict, hash=False)  # FFmpeg options for the input
    #: a file output that exists is replaced; else it is refused before the run, and the finished
    #: recording claims the name (never replacing a file that appeared meanwhile: it is kept beside)
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.max_latency_s, (int, float)) and self.max_latency_s > 0):
            raise ConfigError(f"max_latency_s must be > 0, got {self.max_latency_s!r}")
        if not (isinstance(self.reconnect, int) and self.reconnect >= 0):
            raise ConfigError(f"reconnect must be an integer >= 0, got {self.reconnect!r}")
        if not (isinstance(self.stall_timeout_s, (int, float)) and self.stall_timeout_s > 0):
            raise ConfigError(f"stall_timeout_s must be > 0, got {self.stall_timeout_s!r}")
        if self.output_format is not None and self.output_format not in av.formats_available:
            raise ConfigError(f"unknown output format {self.output_format!r}")

def is_stream(spec: Union[str, Path]) -> bool:
    """True for what :func:`anonymize_stream` treats as a live source or sink.

    ``-`` (stdin/stdout), ``/dev/videoN``, ``v4l2:`` / ``avfoundation:`` / ``dshow:``
    devices, an existing named pipe, ``rtsp rtmp udp tcp srt rist rtp`` URLs, and
    ``http(s)`` URLs of HLS playlists (``.m3u8``) or with a ``live`` path component.
    A plain ``http(s)`` URL of a file is not a stream.
    """
    s = str(spec).strip()
    if s == "-" or _DEVICE_RE.fullmatch(s):
        return True
    prefix, sep, rest = s.partition(":")
    if sep and prefix.lower() in DEVICE_PREFIXES and not rest.startswith("//"):
        return True
    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    if scheme in LIVE_SCHEMES:
        return True
    if scheme in ("http", "https"):
        path = parts.path.lower()
        return path.endswith((".m3u8", ".m3u")) or bool(_HTTP_LIVE_RE.search(path))
    if len(scheme) <= 1:  # a path (or a Windows drive letter)
        with contextlib.suppress(OSError, ValueError):
            return stat.S_ISFIFO(os.stat(s).st_mode)
    return False


@dataclass(frozen=True)
class Source:
    kind: str  # "pipe" | "device" | "network" | "file"
    target: str  # what av.open gets ("" for a pipe read through `fd`)
    name: str  # for messages (no credentials)
    fmt: Optional[str]
    options: dict
    live: bool  # the default for StreamOptions.live
    fd: Optional[int] = None  # stdin
    path: Optional[str] = None  # a named pipe, opened in the reader thread


@dataclass(frozen=True)
class Sink:
    kind: str  # "file" | "pipe" | "network"
    target: str  # path, "pipe:1" or URL
    name: str
    fmt: str
    options: dict  # container (muxer) options


def redact_url(url: str) -> str:
    """``url`` without user name and password (they must not reach logs or reports)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _have_format(name: str) -> bool:
    return any(name in f.split(",") for f in av.formats_available)


def parse_source(src: Union[str, Path], opts: StreamOptions) -> Source:
    s = str(src).strip()
    options = dict(opts.input_options)
    fmt = opts.input_format
    if s == "-":
        try:
            fd = sys.stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):
            raise InputError("stdin: not available to read a stream from") from None
        if os.isatty(fd):
            raise InputError("stdin is a terminal: pipe a video stream into it (e.g. ffmpeg ... -f mpegts -)")
        return Source("pipe", "", "stdin", fmt, options, live=not stat.S_ISREG(mode), fd=fd)

    device_fmt, device = "", None
    if _DEVICE_RE.fullmatch(s):
        device_fmt, device = "v4l2", s
    else:
        prefix, sep, rest = s.partition(":")
        if sep and prefix.lower() in DEVICE_PREFIXES and not rest.startswith("//"):
            device_fmt, device = DEVICE_PREFIXES[prefix.lower()], rest
    if device is not None:
        fmt = fmt or device_fmt
        if not _have_format(fmt):
            raise UnsupportedMediaError(f"{s}: this FFmpeg build cannot read {fmt} devices")
        if fmt == "v4l2" and not os.path.exists(device):
            raise MediaNotFoundError(f"{device}: no such camera device")
        return Source("device", device, s, fmt, options, live=True)

    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    if len(scheme) > 1:
        name = redact_url(s)
        if scheme in ("rtsp", "rtsps"):
            options.setdefault("rtsp_transport", "tcp")  # RTP over UDP loses packets -> damaged frames
        if scheme == "udp":
            options.setdefault("overrun_nonfatal", "1")  # a full receive buffer loses packets, not the stream
        return Source("network", s, name, fmt, options, live=True)

    path = Path(s)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MediaNotFoundError(f"{s}: no such file, device or stream") from None
    except OSError as exc:
        raise InputError(f"{s}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISFIFO(mode):
        return Source("pipe", "", s, fmt, options, live=True, path=s)
    if stat.S_ISREG(mode):
        return Source("file", s, s, fmt, options, live=False)
    raise UnsupportedMediaError(f"{s}: not a stream, pipe or file")


def refuse_existing(sink: Sink, opts: StreamOptions) -> None:
    """Without ``overwrite``, a file output that exists (maybe an earlier recording) is refused
    before anything is read."""
    if sink.kind == "file" and not opts.overwrite and Path(sink.target).exists():
        raise OutputError(f"{sink.target}: output exists (use --overwrite to replace it)")


def parse_sink(dst: Union[str, Path], opts: StreamOptions) -> Sink:
    s = str(dst).strip()
    fmt: Optional[str]  # given, or known from the scheme / suffix
    if s == "-":
        with contextlib.suppress(AttributeError, OSError, ValueError):
            if os.isatty(sys.stdout.fileno()):
                raise OutputError("stdout is a terminal: pipe it into a player or ffmpeg, or give an output file")
        fmt = opts.output_format or "mpegts"
        return Sink("pipe", "pipe:1", "stdout", fmt, _live_muxer_options(fmt))
    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    if len(scheme) > 1:
        fmt = opts.output_format or NETWORK_FORMATS.get(scheme)
        if fmt is None:
            raise ConfigError(f"{redact_url(s)}: cannot stream to {scheme}://; use {', '.join(NETWORK_FORMATS)} or a file")
        target = s
        if scheme == "udp" and "pkt_size" not in parts.query:  # 7 TS packets a datagram, the usual
            target = _with_query(s, "pkt_size=1316")
        if scheme == "tcp" and "timeout" not in parts.query:  # a receiver that stops reading -> error
            target = _with_query(s, f"timeout={int(opts.stall_timeout_s * 1e6)}")
        options = _live_muxer_options(fmt)
        if fmt == "rtsp":
            options.setdefault("rtsp_transport", "tcp")
        return Sink("network", target, redact_url(s), fmt, options)
    path = Path(s)
    fmt = opts.output_format or FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        suffix = path.suffix or "(no suffix)"
        raise ConfigError(f"{s}: unsupported output format {suffix!r}; use {', '.join(FILE_FORMATS)}")
    if path.is_dir():
        raise OutputError(f"output path is a directory: {s}")
    return Sink("file", s, s, fmt, {})


def _with_query(url: str, item: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{item}" if parts.query else item
    return urlunsplit(parts._replace(query=query))


def _live_muxer_options(fmt: str) -> dict:
    return {"flush_packets": "1"} if fmt in ("mpegts", "flv") else {}
