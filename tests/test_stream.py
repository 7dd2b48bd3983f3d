"""veil.io.stream: live sources and sinks, tested with real local streams.

Sources are real: the ffmpeg binary serves MPEG-TS over TCP on 127.0.0.1 (``-listen 1``,
real time with ``-re``), a real clip is piped into a child process's stdin, named pipes are
fed by a thread, and small Python servers on 127.0.0.1 send garbage or stall. ``process``
is a deterministic stand-in for the pipeline (these are IO tests): it stamps a marker on
every frame it handles, a fixed 8-bit header followed by its call count, as 16 black/white
16x16 blocks along the top edge. Reading every decoded output frame back proves that each
one went through ``process``, in order, and that none was emitted raw.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from clips import fail_encoder_at
from helpers import ffmpeg, free_port, wait_listening
from veil.config import VideoConfig
from veil.errors import ConfigError, CorruptMediaError, InputError, OutputError
from veil.io.stream import StreamOptions, StreamStats, anonymize_stream, is_stream

FFMPEG = ffmpeg()  # the test extra installs imageio-ffmpeg (no ffmpeg on PATH needed)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CFG = VideoConfig(encoder_preset="ultrafast")  # IO tests: keep the CPU for the streams

# ----------------------------------------------------------------------------- the marker

HEADER = (1, 0, 1, 1, 0, 0, 1, 0)
BLOCK = 16


def stamp(frame: np.ndarray, n: int) -> None:
    """Draw the header and ``n % 256`` as 16 black/white blocks along the top edge."""
    bits = HEADER + tuple((n >> b) & 1 for b in range(8))
    for i, bit in enumerate(bits):
        frame[:BLOCK, BLOCK * i : BLOCK * (i + 1)] = 255 if bit else 0


def read_stamp(frame: np.ndarray) -> int | None:
    """The number ``stamp`` drew, or None when the frame carries no (clean) marker."""
    gray = frame.astype(np.float32).mean(axis=2)
    bits = []
    for i in range(16):
        m = gray[4:12, BLOCK * i + 4 : BLOCK * i + 12].mean()
        if 60 < m < 195:  # neither black nor white: not a marker
            return None
        bits.append(int(m >= 128))
    if tuple(bits[:8]) != HEADER:
        return None
    return sum(b << i for i, b in enumerate(bits[8:]))


class Stamper:
    """``process``: stamps each frame with its call count; may sleep, may hold ``batch`` frames."""

    def __init__(self, delay: float = 0.0, batch: int = 1, interrupt_at: int | None = None):
        self.delay, self.batch, self.interrupt_at = delay, batch, interrupt_at
        self.calls = 0
        self.shapes: set = set()

    def __call__(self, frames):
        held = []
        for frame in frames:
            self.shapes.add(frame.shape)
            if self.interrupt_at is not None and self.calls == self.interrupt_at:
                raise KeyboardInterrupt  # as if Ctrl-C landed inside the detector
            if self.delay:
                time.sleep(self.delay)
            stamp(frame, self.calls)
            self.calls += 1
            held.append(frame)
            if len(held) >= self.batch:
                yield from held
                held = []
        yield from held


def decode_all(src, fmt: str | None = None) -> list[av.VideoFrame]:
    with av.open(src, format=fmt) as c:
        return list(c.decode(video=0))


def check_all_stamped(frames: list[av.VideoFrame], n_expected: int | None = None) -> list[int]:
    """Every frame is marked and the marks count 0, 1, 2, ... (every processed frame, in order)."""
    assert frames, "no frame in the output"
    marks = [read_stamp(f.to_ndarray(format="rgb24")) for f in frames]
    unmarked = [i for i, m in enumerate(marks) if m is None]
    assert not unmarked, f"{len(unmarked)} output frame(s) without the marker, first at #{unmarked[0]}"
    assert marks == [i % 256 for i in range(len(marks))], f"marks out of sequence: {marks[:20]}..."
    if n_expected is not None:
        assert len(frames) == n_expected
    return marks


def check_monotonic(frames: list[av.VideoFrame]) -> None:
    times = [f.time for f in frames]
    assert all(t is not None for t in times)
    assert all(b > a for a, b in zip(times, times[1:])), "output timestamps not strictly increasing"


# ----------------------------------------------------------------------------- local servers


def ffmpeg_tcp_server(procs, port: int, seconds: float = 8, size: str = "320x240", rate: int = 15) -> subprocess.Popen:
    """A real-time MPEG-TS stream (ffmpeg's test pattern, H.264) served on tcp://127.0.0.1:port."""
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(rate), "-pix_fmt", "yuv420p",
        "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1",
    ]  # fmt: skip
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    procs.append(p)
    wait_listening(port, p)
    return p


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Small MPEG-TS clips at 15 fps: a (320x240, 30 frames), b (240x320, 15 frames), a+b
    concatenated; and slow (320x240, 300 frames at 1 fps: 299 s of timestamps, 1.3 MB)."""
    d = tmp_path_factory.mktemp("stream_clips")

    def make(name, size, frames, pattern="testsrc", rate=15):
        path = d / name
        subprocess.run(
            [FFMPEG, "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}",
             "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p",
             "-f", "mpegts", str(path)],
            check=True, timeout=60,
        )  # fmt: skip
        return path

    a = make("a.ts", "320x240", 30)
    b = make("b.ts", "240x320", 15, "smptebars")
    both = d / "a_then_b.ts"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    slow = make("slow.ts", "320x240", 300, rate=1)
    return {"a": a, "b": b, "a_then_b": both, "slow": slow}


def fifo_fed(tmp_path: Path, chunks: list[bytes], delay: float = 0.0) -> tuple[Path, threading.Thread]:
    """A named pipe and a thread that writes ``chunks`` into it, then closes it."""
    path = tmp_path / "in.fifo"
    os.mkfifo(path)

    def feed():
        try:
            with open(path, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    fh.flush()
                    time.sleep(delay)
        except BrokenPipeError:
            pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return path, t


class TcpServer(threading.Thread):
    """Accepts connections on 127.0.0.1; ``handle(conn, index)`` serves each one."""

    def __init__(self, handle):
        super().__init__(daemon=True)
        self.handle = handle
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.conns: list[socket.socket] = []
        self.start()

    def run(self):
        i = 0
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self.handle, args=(conn, i), daemon=True).start()
            i += 1

    def close(self):
        self.done.set()
        for c in self.conns:
            c.close()
        self.sock.close()


class Receiver(threading.Thread):
    """Collects what a TCP client or UDP sender sends to 127.0.0.1:port."""

    def __init__(self, kind):
        super().__init__(daemon=True)
        self.kind = kind
        self.sock = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_DGRAM:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.finished = threading.Event()
        if kind == socket.SOCK_STREAM:
            self.sock.listen(1)
            self.sock.settimeout(20)
        self.start()

    def run(self):
        try:
            if self.kind == socket.SOCK_STREAM:
                conn, _ = self.sock.accept()
                with conn:
                    while chunk := conn.recv(65536):
                        self.data += chunk
            else:
                # The sender has queued every datagram here by the time ``finished`` is set, so
                # read until the socket is empty after that (a second of grace for datagrams
                # still in the kernel), however slowly they came before: no timing guess.
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    finished = self.finished.is_set()
                    self.sock.settimeout(1.0 if finished else 0.1)
                    try:
                        self.data += self.sock.recv(65536)
                    except socket.timeout:
                        if finished:
                            break
        finally:
            self.sock.close()


@pytest.fixture
def fast_backoff(monkeypatch):
    """Reconnection waits of 0.3 s (the backoff sequence itself is not under test here)."""
    import veil.io.live.reader as live_reader

    monkeypatch.setattr(live_reader, "_BACKOFF", (0.3,))


# ----------------------------------------------------------------------------- unit checks


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("-", True),
        ("/dev/video0", True),
        ("v4l2:/dev/video2", True),
        ("rtsp://user:pw@cam.local:554/stream1", True),
        ("rtmp://127.0.0.1/live/key", True),
        ("udp://127.0.0.1:1234", True),
        ("tcp://127.0.0.1:1234", True),
        ("srt://127.0.0.1:9000", True),
        ("https://example.org/hls/index.m3u8", True),
        ("http://127.0.0.1:8080/live", True),
        ("http://example.org/videos/clip.mp4", False),
        ("clip.mp4", False),
        ("C:\\videos\\clip.mp4", False),
        ("/dev/null", False),
    ],
)
def test_is_stream(spec, expected):
    assert is_stream(spec) is expected


def test_is_stream_named_pipe(tmp_path):
    os.mkfifo(tmp_path / "p")
    assert is_stream(str(tmp_path / "p"))
    assert not is_stream(str(tmp_path))


def test_options_and_outputs_are_validated(tmp_path, clips):
    with pytest.raises(ConfigError):
        StreamOptions(max_latency_s=0)
    with pytest.raises(ConfigError):
        StreamOptions(reconnect=-1)
    with pytest.raises(ConfigError):
        anonymize_stream(str(clips["a"]), tmp_path / "out.avi", Stamper(), CFG)
    with pytest.raises(ConfigError):
        anonymize_stream(str(clips["a"]), "ftp://127.0.0.1/x", Stamper(), CFG)


def test_marker_check_can_fail(clips):
    """The verifier rejects unprocessed frames (else the tests below would prove nothing)."""
    frames = decode_all(str(clips["a_then_b"]))
    assert all(read_stamp(f.to_ndarray(format="rgb24")) is None for f in frames)
    arr = frames[0].to_ndarray(format="rgb24")
    stamp(arr, 7)
    assert read_stamp(arr) == 7
    with pytest.raises(AssertionError):
        check_all_stamped(frames[:3])


# ----------------------------------------------------------------------------- network sources


def test_tcp_stream_to_file_until_stop(tmp_path, procs):
    """Real-time TCP stream from ffmpeg -> .mp4; ``stop`` ends it with a finalized file; a
    ``process`` that holds frames (batch 4) gets to finish them."""
    port = free_port()
    ffmpeg_tcp_server(procs, port)
    stop = threading.Event()
    proc = Stamper(batch=4)
    dst = tmp_path / "out.mp4"

    def on_frame(n):
        if n >= 30:
            stop.set()

    stats = anonymize_stream(
        f"tcp://127.0.0.1:{port}", dst, proc, CFG, StreamOptions(reconnect=0, stall_timeout_s=5),
        on_frame=on_frame, stop=stop,
    )  # fmt: skip
    assert isinstance(stats, StreamStats) and stats.ended == "stop"
    assert stats.frames_out == proc.calls >= 30  # buffered frames were drained, none lost
    assert (stats.width, stats.height) == (320, 240) and stats.fps == 15
    frames = decode_all(str(dst))
    check_all_stamped(frames, stats.frames_out)
    check_monotonic(frames)
    assert (frames[0].width, frames[0].height) == (320, 240)
    # timing follows the source's timestamps: 15 fps (where no frame was dropped)
    gaps = np.diff([f.time for f in frames])
    assert np.median(gaps) == pytest.approx(1 / 15, abs=0.005)
    assert not list(tmp_path.glob(".*.part*"))  # no temporary file left


def test_slow_process_drops_frames_bounds_latency(tmp_path, procs):
    """Processing at ~5 fps a 15 fps stream: frames are dropped before ``process``, the delay
    stays bounded, and every written frame is marked."""
    port = free_port()
    ffmpeg_tcp_server(procs, port)
    stop = threading.Event()
    timer = threading.Timer(3.0, stop.set)
    proc = Stamper(delay=0.2)
    dst = tmp_path / "out.ts"
    budget = 0.5
    timer.start()
    try:
        stats = anonymize_stream(
            f"tcp://127.0.0.1:{port}", dst, proc, CFG,
            StreamOptions(max_latency_s=budget, reconnect=0, stall_timeout_s=5), stop=stop,
        )  # fmt: skip
    finally:
        timer.cancel()
    # the queue holds ~budget + 2 frames; its oldest frames are over budget when their turn comes
    assert stats.dropped_late > 0 and stats.dropped_overflow >= 0
    assert stats.frames_out == proc.calls < stats.frames_in
    # decoded -> queued at most `budget` -> process (0.2 s) -> written; slack for a loaded machine
    assert stats.latency_max_s < budget + 0.2 + 0.6, stats
    frames = decode_all(str(dst))
    check_all_stamped(frames, stats.frames_out)
    check_monotonic(frames)
    # dropped frames leave real gaps: the output spans the time it took, not frames_out / 15
    assert frames[-1].time - frames[0].time > (len(frames) - 1) / 15 * 1.5


def test_reconnects_when_the_server_comes_back(tmp_path, procs, fast_backoff, caplog):
    """The server is killed mid-stream and restarted on the same port: veil reconnects and
    the output goes on, timestamps still increasing."""
    port = free_port()
    servers = [ffmpeg_tcp_server(procs, port, seconds=10)]
    stop = threading.Event()
    restarted_at = []

    def on_frame(n):
        if n == 15:
            servers[0].kill()
            servers[0].wait()
            servers.append(ffmpeg_tcp_server(procs, port, seconds=10, size="320x240"))
            restarted_at.append(n)
        if n >= 35:
            stop.set()

    proc = Stamper()
    dst = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING, logger="veil"):
        stats = anonymize_stream(
            f"tcp://127.0.0.1:{port}", dst, proc, CFG, StreamOptions(reconnect=10, stall_timeout_s=3),
            on_frame=on_frame, stop=stop,
        )  # fmt: skip
    assert restarted_at and stats.reconnects == 1 and stats.ended == "stop"
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    frames = decode_all(str(dst))
    check_all_stamped(frames, stats.frames_out)
    check_monotonic(frames)


def test_server_killed_reconnect_attempts_then_clean_error(tmp_path, procs, fast_backoff, caplog):
    """The server dies for good: 2 reconnection attempts, then a one-line InputError; the
    frames processed before are kept in a finalized file (as documented)."""
    port = free_port()
    server = ffmpeg_tcp_server(procs, port, seconds=10)

    def on_frame(n):
        if n == 10:
            server.kill()

    proc = Stamper()
    dst = tmp_path / "out.mp4"
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="veil"), pytest.raises(InputError) as info:
        anonymize_stream(
            f"tcp://127.0.0.1:{port}", dst, proc, CFG, StreamOptions(reconnect=2, stall_timeout_s=2),
            on_frame=on_frame,
        )  # fmt: skip
    msg = str(info.value)
    assert "\n" not in msg and "gave up after 2 reconnection attempt(s)" in msg and "kept in" in msg, msg
    assert sum("reconnecting" in r.getMessage() for r in caplog.records) == 2
    assert time.monotonic() - t0 < 20
    stats = info.value.stream_stats
    assert stats.ended == "error" and stats.frames_out >= 10
    frames = decode_all(str(dst))
    check_all_stamped(frames, stats.frames_out)
    assert not list(tmp_path.glob(".*.part*"))


def _stop_after(n_frames: int):
    stop = threading.Event()

    def on_frame(n):
        if n >= n_frames:
            stop.set()

    return stop, on_frame


def test_udp_source(tmp_path, procs):
    """MPEG-TS datagrams sent in real time by ffmpeg to udp://127.0.0.1:port."""
    port = free_port(socket.SOCK_DGRAM)
    sender = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15",
         "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
         "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs.append(sender)
    stop, on_frame = _stop_after(25)
    dst = tmp_path / "out.mp4"
    stats = anonymize_stream(f"udp://127.0.0.1:{port}", dst, Stamper(), CFG,
                             StreamOptions(reconnect=0, stall_timeout_s=5), on_frame=on_frame, stop=stop)  # fmt: skip
    assert stats.ended == "stop" and stats.frames_out >= 25
    frames = decode_all(str(dst))
    check_all_stamped(frames, stats.frames_out)
    check_monotonic(frames)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_hls_source_over_http(tmp_path, procs):
    """A live HLS playlist (ffmpeg writing 1 s segments) served over HTTP on 127.0.0.1."""
    hls = tmp_path / "hls"
    hls.mkdir()
    writer = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15",
         "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15",
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "4", "-hls_flags", "delete_segments", str(hls / "live.m3u8")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs.append(writer)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(hls)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        while not (hls / "live.m3u8").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8"
        assert is_stream(url)
        stop, on_frame = _stop_after(25)
        dst = tmp_path / "out.mp4"
        stats = anonymize_stream(url, dst, Stamper(), CFG, StreamOptions(reconnect=0, stall_timeout_s=5),
                                 on_frame=on_frame, stop=stop)  # fmt: skip
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert stats.ended == "stop" and stats.frames_out >= 25
    frames = decode_all(str(dst))
    check_all_stamped(frames, stats.frames_out)
    check_monotonic(frames)


def test_first_connection_failure_is_immediate(tmp_path):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(InputError, match="cannot connect"):
        anonymize_stream(f"tcp://127.0.0.1:{port}", tmp_path / "out.mp4", Stamper(), CFG, StreamOptions(reconnect=5))
    assert time.monotonic() - t0 < 3
    assert list(tmp_path.iterdir()) == []


def test_stalled_source_reconnects_then_fails(tmp_path, clips, fast_backoff):
    """A server that sends part of a stream and then goes silent (connection kept open):
    after ``stall_timeout_s`` veil reconnects; the server stays silent; a clear error."""
    data = clips["a"].read_bytes()

    def handle(conn, i):
        if i == 0:
            conn.sendall(data[: len(data) * 2 // 3])
        # then (and on every later connection) silence, the connection left open

    server = TcpServer(handle)
    proc = Stamper()
    try:
        with pytest.raises(InputError) as info:
            anonymize_stream(
                f"tcp://127.0.0.1:{server.port}", tmp_path / "out.mp4", proc, CFG,
                StreamOptions(reconnect=1, stall_timeout_s=1.0, max_latency_s=5),
            )  # fmt: skip
    finally:
        server.close()
    msg = str(info.value)
    assert "no data for 1 s" in msg and "gave up after 1 reconnection" in msg and "\n" not in msg, msg
    assert len(server.conns) == 2  # the first connection and one reconnection
    frames = decode_all(str(tmp_path / "out.mp4"))
    check_all_stamped(frames, info.value.stream_stats.frames_out)


def test_garbage_on_the_socket(tmp_path):
    server = TcpServer(lambda conn, i: (conn.sendall(os.urandom(300_000)), conn.close()))
    proc = Stamper()
    try:
        with pytest.raises(CorruptMediaError) as info:
            anonymize_stream(f"tcp://127.0.0.1:{server.port}", tmp_path / "out.mp4", proc, CFG)
    finally:
        server.close()
    msg = str(info.value)
    assert "\n" not in msg and "not a video stream" in msg, msg
    assert proc.calls == 0 and list(tmp_path.iterdir()) == []


def test_credentials_are_not_shown(tmp_path):
    port = free_port()
    with pytest.raises(InputError) as info:
        anonymize_stream(f"tcp://alice:s3cret@127.0.0.1:{port}", tmp_path / "o.mp4", Stamper(), CFG)
    assert "s3cret" not in str(info.value) and "alice" not in str(info.value)


# ----------------------------------------------------------------------------- pipes


def test_resolution_change_mid_stream(tmp_path, clips):
    """320x240 then 240x320 in one MPEG-TS through a named pipe: ``process`` only ever sees
    320x240 (the portrait part letterboxed), the output has one size, every frame marked."""
    pipe, feeder = fifo_fed(tmp_path, [clips["a_then_b"].read_bytes()])
    proc = Stamper()
    dst = tmp_path / "out.mp4"
    stats = anonymize_stream(str(pipe), dst, proc, CFG, StreamOptions(live=False, stall_timeout_s=5))
    feeder.join(5)
    assert stats.ended == "eof"
    assert proc.shapes == {(240, 320, 3)}
    assert stats.frames_out == 45 and stats.resized == 15 and stats.dropped == 0
    frames = decode_all(str(dst))
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    check_all_stamped(frames, 45)
    check_monotonic(frames)
    last = frames[-1].to_ndarray(format="rgb24")  # portrait part: 180x240 centred, black bars
    assert last[BLOCK + 4 :, :60].max() < 40 and last[BLOCK + 4 :, -60:].max() < 40
    assert last[BLOCK + 4 :, 100:220].mean() > 60


def test_garbage_in_the_middle_of_a_pipe(tmp_path, clips):
    """Valid stream, 100 kB of noise, valid stream: the damage is skipped or dropped, the
    rest is processed, nothing unmarked comes out."""
    data = clips["a"].read_bytes()
    rng = np.random.default_rng(0)
    pipe, feeder = fifo_fed(tmp_path, [data, rng.integers(0, 256, 100_000, np.uint8).tobytes(), data])
    proc = Stamper()
    dst = tmp_path / "out.mp4"
    stats = anonymize_stream(str(pipe), dst, proc, CFG, StreamOptions(live=False, stall_timeout_s=5))
    feeder.join(5)
    assert stats.ended == "eof" and stats.frames_out >= 45
    check_all_stamped(decode_all(str(dst)), stats.frames_out)


def test_stalled_pipe_is_a_clear_error(tmp_path, clips):
    """A pipe whose writer goes silent (but stays open): one-line error after the timeout,
    processed frames kept."""
    path = tmp_path / "in.fifo"
    os.mkfifo(path)
    data = clips["a"].read_bytes()
    release = threading.Event()

    def feed():
        with open(path, "wb") as fh:
            fh.write(data)  # all of it (probing wants ~20 frames), then silence, pipe left open
            fh.flush()
            release.wait(20)

    threading.Thread(target=feed, daemon=True).start()
    try:
        with pytest.raises(InputError) as info:
            anonymize_stream(str(path), tmp_path / "out.mp4", Stamper(), CFG,
                             StreamOptions(live=False, stall_timeout_s=1.0))  # fmt: skip
    finally:
        release.set()
    assert "no data for 1 s" in str(info.value) and "\n" not in str(info.value)
    check_all_stamped(decode_all(str(tmp_path / "out.mp4")), info.value.stream_stats.frames_out)


def test_live_pipe_faster_than_real_time_warns(tmp_path, clips, caplog):
    """A whole file dumped into a 'live' pipe: frames are dropped and a warning says to use
    live=False. Nothing here depends on speed: the clip's timestamps span 299 s (1 fps) and
    it arrives in the seconds it takes to read; ``process`` waits until the writer has put
    the whole file into the pipe, so the queue (7 frames) overflows whatever the load."""
    pipe, feeder = fifo_fed(tmp_path, [clips["slow"].read_bytes()])

    def after_the_dump(frames):
        feeder.join(60)  # the reader has taken all but the last pipe buffer (64 KiB: ~15 frames)
        return Stamper()(frames)

    with caplog.at_level(logging.WARNING, logger="veil"):
        stats = anonymize_stream(str(pipe), tmp_path / "o.ts", after_the_dump, CFG,
                                 StreamOptions(max_latency_s=5.0))  # fmt: skip
    assert not feeder.is_alive()
    assert stats.dropped_overflow > 100 and stats.frames_out + stats.dropped == stats.frames_in == 300
    assert any("faster than real time" in r.getMessage() for r in caplog.records)
    check_all_stamped(decode_all(str(tmp_path / "o.ts")), stats.frames_out)


def test_keyboard_interrupt_keeps_a_finalized_file(tmp_path, clips):
    """Ctrl-C inside ``process``: KeyboardInterrupt is re-raised and the frames written
    before it are in a valid, finalized .mp4."""
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])
    dst = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt) as info:
        anonymize_stream(str(pipe), dst, Stamper(interrupt_at=20), CFG, StreamOptions(live=False))
    assert info.value.stream_stats.ended == "interrupted"
    assert info.value.outcome == f"the 20 frame(s) anonymized before it were kept in {dst}"
    check_all_stamped(decode_all(str(dst)), 20)
    assert not list(tmp_path.glob(".*.part*"))


def test_error_in_process_before_any_frame_leaves_nothing(tmp_path, clips):
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])

    def broken(frames):
        for _ in frames:
            raise RuntimeError("detector exploded")
            yield

    with pytest.raises(RuntimeError, match="exploded"):
        anonymize_stream(str(pipe), tmp_path / "out.mp4", broken, CFG, StreamOptions(live=False))
    assert [p.name for p in tmp_path.iterdir()] == ["in.fifo"]


def test_a_live_run_encodes_on_the_shared_background_encoder(tmp_path, clips):
    """Live streams use the files' VideoEncoder: its thread encodes while ``process`` runs,
    and it is gone when the run returns (issue #14)."""
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])
    seen = []
    stamper = Stamper()

    def watching(frames):
        for out in stamper(frames):
            seen.append(any(t.name == "veil-encoder" for t in threading.enumerate()))
            yield out

    dst = tmp_path / "out.mp4"
    stats = anonymize_stream(str(pipe), dst, watching, CFG, StreamOptions(live=False))
    assert stats.frames_out == 30 and all(seen)
    check_all_stamped(decode_all(str(dst)), 30)
    assert not [t for t in threading.enumerate() if t.name == "veil-encoder"]


def test_a_muxer_error_on_the_encoder_thread_stops_a_live_run_and_keeps_nothing(tmp_path, clips, monkeypatch):
    """Fail closed: an OutputError raised on the encoder thread reaches the caller at its next
    frame, the run stops, and the half-written recording is removed (an output that failed
    is not kept); the thread is stopped."""
    fail_encoder_at(monkeypatch, 6, OutputError("cannot write to out.mp4 (No space left on device)"))
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])
    with pytest.raises(OutputError, match="No space left") as info:
        anonymize_stream(str(pipe), tmp_path / "out.mp4", Stamper(), CFG, StreamOptions(live=False))
    assert info.value.outcome == f"nothing was written to {tmp_path / 'out.mp4'}"
    assert [p.name for p in tmp_path.iterdir()] == ["in.fifo"]
    assert not [t for t in threading.enumerate() if t.name == "veil-encoder"]


# ----------------------------------------------------------------------------- child processes: stdin/stdout, Ctrl-C

HELPER = r"""
import json, logging, os, sys
sys.path[:0] = [sys.argv[1], os.path.dirname(sys.argv[1])]  # test_stream, and this checkout's veil
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
from test_stream import CFG, Stamper
from veil.errors import VeilError
from veil.io.interrupts import exit_status, terminate_as_interrupt
from veil.io.stream import StreamOptions, anonymize_stream

src, dst, opts = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

def on_frame(n):
    if n % 10 == 0:
        print(f"FRAME {n}", file=sys.stderr, flush=True)

try:
    with terminate_as_interrupt():  # as the CLI does
        stats = anonymize_stream(src, dst, Stamper(), CFG, StreamOptions(**opts), on_frame=on_frame)
except VeilError as exc:
    print(f"ERROR {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
except KeyboardInterrupt as exc:
    print(f"INTERRUPTED {exc.outcome}", file=sys.stderr)
    sys.exit(exit_status(exc))
print("STATS " + json.dumps({"frames_out": stats.frames_out, "dropped": stats.dropped,
                             "width": stats.width, "height": stats.height}), file=sys.stderr)
"""


def helper(tmp_path: Path, src: str, dst: str, **opts) -> list[str]:
    script = tmp_path / "helper.py"
    script.write_text(HELPER)
    return [sys.executable, str(script), str(HERE), src, dst, json.dumps(opts)]


def test_stdin_pipe_to_stdout_pipe_real_clip(tmp_path, hamilton, procs):
    """A real clip streamed in real time by ffmpeg into veil's stdin; veil's stdout (MPEG-TS)
    decodes, and every frame in it went through ``process``."""
    clip = hamilton
    feeder = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-t", "3", "-i", str(clip),
         "-c", "copy", "-f", "mpegts", "-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs.append(feeder)
    # a latency budget longer than the clip: nothing is dropped however busy the machine is
    veil = subprocess.Popen(helper(tmp_path, "-", "-", stall_timeout_s=5, max_latency_s=60), stdin=feeder.stdout,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)  # fmt: skip
    procs.append(veil)
    feeder.stdout.close()
    out, err = veil.communicate(timeout=60)
    err = err.decode()
    assert veil.returncode == 0, err
    stats = json.loads(err.split("STATS ", 1)[1])
    assert (stats["width"], stats["height"]) == (640, 360)
    assert stats["dropped"] == 0 and stats["frames_out"] >= 60  # the first 3 s of the file: ~2.2 s of video
    with av.open(io.BytesIO(out), format="mpegts") as c:
        assert not c.streams.audio  # audio is not passed through
        frames = list(c.decode(video=0))
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    check_all_stamped(frames, stats["frames_out"])
    check_monotonic(frames)


def test_garbage_on_stdin_exits_nonzero_with_one_line(tmp_path):
    veil = subprocess.run(helper(tmp_path, "-", "-"), input=os.urandom(200_000), capture_output=True,
                          timeout=60, cwd=ROOT)  # fmt: skip
    assert veil.returncode == CorruptMediaError.exit_code == 3
    lines = veil.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR stdin: not a video stream"), lines
    assert veil.stdout == b""


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_finalize_the_file(tmp_path, procs, default_signals, signum, status):
    """A real SIGINT / SIGTERM to a child recording a live TCP stream to .mp4: exit status
    128 + signal, and the file is complete and playable (SIGTERM used to kill the child and
    leave only the hidden .part file)."""
    port = free_port()
    ffmpeg_tcp_server(procs, port, seconds=10)
    dst = tmp_path / "rec.mp4"
    veil = subprocess.Popen(helper(tmp_path, f"tcp://127.0.0.1:{port}", str(dst), reconnect=0),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)  # fmt: skip
    procs.append(veil)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = veil.stderr.readline().decode()
        if line.startswith("FRAME 20") or not line:
            break
    assert line.startswith("FRAME 20"), line + veil.stderr.read().decode()
    veil.send_signal(signum)
    assert veil.wait(timeout=20) == status, veil.stderr.read().decode()
    frames = decode_all(str(dst))
    assert len(frames) >= 20
    check_all_stamped(frames)
    said = veil.stderr.read().decode().split("INTERRUPTED ", 1)[1].strip()
    assert said == f"the {len(frames)} frame(s) anonymized before it were kept in {dst}"
    assert not list(tmp_path.glob(".*.part*"))


# ----------------------------------------------------------------------------- network outputs


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_network_output(tmp_path, clips, kind):
    """Output pushed as MPEG-TS to a receiver on 127.0.0.1 (TCP client / UDP datagrams)."""
    rx = Receiver(socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])
    stats = anonymize_stream(str(pipe), f"{kind}://127.0.0.1:{rx.port}", Stamper(), CFG, StreamOptions(live=False))
    rx.finished.set()
    rx.join(10)
    assert stats.frames_out == 30
    frames = decode_all(io.BytesIO(bytes(rx.data)), "mpegts")
    marks = [read_stamp(f.to_ndarray(format="rgb24")) for f in frames]
    assert None not in marks and marks == sorted(marks)
    assert len(frames) == 30 if kind == "tcp" else len(frames) >= 25  # UDP may lose a datagram


def test_rtsp_output_to_a_local_server(tmp_path, clips, procs):
    """Pushed over RTSP (TCP) to ffmpeg acting as the RTSP server, which saves what it gets."""
    port = free_port()
    saved = tmp_path / "received.ts"
    server = subprocess.Popen(
        [FFMPEG, "-y", "-hide_banner", "-loglevel", "error", "-rtsp_flags", "listen", "-listen_timeout", "20",
         "-i", f"rtsp://127.0.0.1:{port}/live", "-c", "copy", "-f", "mpegts", str(saved)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    procs.append(server)
    wait_listening(port, server)
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])
    stats = anonymize_stream(str(pipe), f"rtsp://127.0.0.1:{port}/live", Stamper(), CFG, StreamOptions(live=False))
    assert server.wait(timeout=20) == 0, server.stderr.read().decode()
    check_all_stamped(decode_all(str(saved)), stats.frames_out)


def test_output_that_refuses_is_an_output_error(tmp_path, clips):
    pipe, feeder = fifo_fed(tmp_path, [clips["a"].read_bytes()])
    with pytest.raises(OutputError):
        anonymize_stream(str(pipe), f"tcp://127.0.0.1:{free_port()}", Stamper(), CFG, StreamOptions(live=False))


def test_an_existing_recording_is_not_replaced_unasked(tmp_path, clips):
    """A file output that exists is refused before the run (it may be an earlier recording);
    with ``overwrite`` it is replaced."""
    dst = tmp_path / "rec.mp4"
    dst.write_bytes(b"an earlier recording")
    with pytest.raises(OutputError, match="output exists"):
        anonymize_stream(str(clips["a"]), dst, Stamper(), CFG, StreamOptions(live=False))
    assert dst.read_bytes() == b"an earlier recording"
    stats = anonymize_stream(str(clips["a"]), dst, Stamper(), CFG, StreamOptions(live=False, overwrite=True))
    assert stats.frames_out == 30
    check_all_stamped(decode_all(str(dst)), 30)


def test_a_name_taken_during_the_recording_is_not_replaced_and_the_recording_is_kept(tmp_path, clips):
    """Another program creates the output file while the stream is recorded: the recording
    (which cannot be made again) does not replace it; it is kept beside under a name the
    error gives, complete, and no temporary file is left."""
    dst = tmp_path / "rec.mp4"

    class Intruder(Stamper):
        def __call__(self, frames):
            if not dst.exists():
                dst.write_bytes(b"another program's file")
            yield from super().__call__(frames)

    with pytest.raises(OutputError, match="appeared while this run was working") as info:
        anonymize_stream(str(clips["a"]), dst, Intruder(), CFG, StreamOptions(live=False))
    assert dst.read_bytes() == b"another program's file"
    kept = [p for p in tmp_path.iterdir() if p != dst]
    assert len(kept) == 1 and not kept[0].name.startswith(".") and str(kept[0]) in str(info.value)
    check_all_stamped(decode_all(str(kept[0])), 30)
