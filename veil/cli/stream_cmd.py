"""``veil stream``: anonymize a live source (camera, network URL, stdin) with bounded latency."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import List, Optional

import typer

from ..audit.outputs import record_outputs
from ..io.interrupts import INTERRUPT_SIGNALS, signal_label
from . import options as opt
from .common import build, one_line_errors, warn_not_hiding
from .engine_options import AddressOpt, EngineOpt
from .progress import console


@one_line_errors
def stream(
    source: List[str] = typer.Argument(..., help="rtsp://, http(s)://….m3u8, udp://, tcp://, srt://, /dev/video0, or - (stdin). "
                                                 "Several with --engine ray (one Ray actor each)."),
    output: List[str] = typer.Option(..., "-o", "--output", help="A file, - (stdout, MPEG-TS), or udp:// tcp:// rtsp:// rtmp:// URL; "
                                                                 "one per source, in order."),
    preset: opt.Preset = "balanced",
    filter: opt.Filter = None,
    color: opt.Color = None,
    image: opt.Image = None,
    shape: opt.Shape = None,
    mask_scale: opt.MaskScale = None,
    head: opt.Head = None,
    feather: opt.Feather = None,
    strength: opt.Strength = None,
    allow_weak: opt.AllowWeak = None,
    threshold: opt.Threshold = None,
    max_side: opt.MaxSide = None,
    device: opt.Device = None,
    detector: opt.Detector = None,
    detect_every: opt.DetectEvery = None,
    max_latency: float = typer.Option(1.0, help="Frames older than this (s) are dropped before processing, never sent raw."),
    reconnect: int = typer.Option(5, help="Reconnection attempts for network sources."),
    stall_timeout: float = typer.Option(10.0, help="Seconds without a frame before reconnecting."),
    format: Optional[str] = typer.Option(None, "--format", help="Output container (default by scheme/suffix; mpegts for -)."),
    live: Optional[bool] = typer.Option(None, "--live/--no-live", help="Drop late frames (live) or wait (recorded input)."),
    overwrite: opt.Overwrite = False,
    report: opt.Report = None,
    spare: opt.Spare = None,
    spare_enrolled: opt.SpareEnrolled = None,
    only: opt.Only = None,
    gallery: opt.Gallery = None,
    key_file: opt.KeyFile = None,
    name_hidden: opt.NameHidden = None,
    quiet: opt.Quiet = False,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Anonymize a live stream (several with --engine ray). Ctrl-C (or SIGTERM, SIGHUP) once: finish cleanly; twice: abort."""
    from ..errors import ConfigError
    from ..io.stream import StreamOptions

    if len(source) != len(output):
        raise ConfigError(f"{len(source)} source(s) and {len(output)} output(s): give one -o per source")
    if len(source) > 1 and getattr(engine, "value", engine) != "ray":
        raise ConfigError("several streams at once need --engine ray")

    anon = build(preset, filter=filter, color=color, image=image, shape=shape, mask_scale=mask_scale, head=head,
                 feather=feather, strength=strength, allow_weak=allow_weak, threshold=threshold, max_side=max_side,
                 device=device, detector=detector, detect_every=detect_every, spare=spare or None,
                 spare_enrolled=spare_enrolled, only=only or None, gallery=gallery, key_file=key_file,
                 name_hidden=name_hidden, report_path=report,  # checked now, not after the stream ends
                 engine=engine, address=address)
    done = "anonymized" if warn_not_hiding(anon) else "written, faces NOT hidden"
    opts = StreamOptions(max_latency_s=max_latency, reconnect=reconnect, stall_timeout_s=stall_timeout,
                         output_format=format, live=live, overwrite=overwrite)

    def on_frame(n: int) -> None:
        if not quiet and (n == 1 or n % 100 == 0):  # the first: the run is under way
            console.print(f"{n} frame{'s' if n > 1 else ''} {done}", highlight=False)

    stop = threading.Event()
    stopped_by: list[int] = []
    with _stop_on_signals(stop, stopped_by):
        try:
            if anon.engine.distributed:
                items = anon.streams(list(zip(source, output)), opts, stop=stop,
                                     on_update=None if quiet else _every(30, lambda up: console.print(
                                         f"frames {done}: " + ", ".join(str(u.get("frames", "restarting")) for u in up),
                                         highlight=False)))
            else:
                items = [anon.stream(source[0], output[0], opts, on_frame=on_frame, stop=stop)]
        finally:
            anon.close()
            if report is not None:
                anon.write_report()
            record_outputs(anon)
    for item in items:
        s = item.extra.get("stream", {})
        if not quiet:
            where = f"{item.input}: " if len(items) > 1 else ""
            console.print(f"{where}{s.get('frames_out', 0)} frames {done}, {s.get('dropped', 0)} dropped before processing, "
                          f"{s.get('reconnects', 0)} reconnection(s), ended: {s.get('ended')}", markup=False, highlight=False)
        if item.status == "error":
            console.print(f"veil: error: {item.input}: {item.error}", markup=False, highlight=False)
    if any(item.status == "error" for item in items):
        raise typer.Exit(6)
    if stopped_by:  # finalized on request, but not the end of the source: say so in the exit status
        raise typer.Exit(128 + stopped_by[0])


def _every(n: int, fn):
    """``fn`` on the first call and every ``n``-th after (progress lines, not one a second)."""
    calls = [0]

    def call(*args) -> None:
        if calls[0] % n == 0:
            fn(*args)
        calls[0] += 1

    return call


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, stopped_by: list[int]):
    """The first Ctrl-C or SIGTERM sets ``stop`` (the frames in flight are finished and a file
    is finalized); a second one goes to the handler that was there before (an interruption:
    the run aborts, keeping what was written). Signals that are ignored or left at their
    default action stay so, and outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in INTERRUPT_SIGNALS}
    handled = [s for s, handler in previous.items() if callable(handler)]

    def restore() -> None:
        for s in handled:
            signal.signal(s, previous[s])

    def on_signal(signum, frame):
        if stop.is_set():
            restore()
            previous[signum](signum, frame)
            return
        label = signal_label(signum)
        console.print(f"veil: {label}: stopping after the frames in flight ({label} again to abort)", highlight=False)
        stopped_by.append(signum)
        stop.set()

    for s in handled:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        restore()
