"""Interruptions (Ctrl-C, SIGTERM, SIGHUP): one way to handle them, held during critical steps.

Services, containers and ``timeout`` stop a program with SIGTERM, whose default action kills
the process on the spot: a file being written stays behind as a hidden ``.part`` file and a
live recording is lost (an mp4 without its index does not play). The CLI therefore turns
SIGTERM into :class:`Terminated`, a subclass of ``KeyboardInterrupt``, so that every path
that handles Ctrl-C handles SIGTERM the same way with no second code path: files are removed
(all or nothing), live recordings are finalized. :func:`terminate_as_interrupt` is for the
program's entry point only; the library never changes process-wide signal handling itself.

Python raises the interruption at whatever bytecode the main thread runs when the signal
arrives. Inside an encoder call that is between "the encoder handed out a packet" and "the
muxer wrote it": the packet is lost, and a stream that is finalized afterwards misses a
frame in the middle. Writers therefore run their encode / mux / trailer steps inside
:func:`interrupts_deferred`; the interruption is delivered as soon as the step is done, so
it still stops the run within one frame.

SIGHUP (the terminal closed, an SSH session dropped) kills a process the same way, so it is
handled as SIGTERM is (exit status 129); ``nohup`` makes it ignored, and that choice is kept.

Handlers can only be set in the main thread; elsewhere (a service calling the API from a
worker thread) both helpers do nothing, and the program's own handling stays in charge.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["INTERRUPT_SIGNALS", "Terminated", "exit_status", "interrupts_deferred", "signal_label", "terminate_as_interrupt"]

#: The signals that mean "stop": Ctrl-C, the polite kill, and the hang-up of a closed terminal.
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: The ones whose default action kills the process outright: turned into :class:`Terminated`.
_KILLING = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (raised by the handler :func:`terminate_as_interrupt` installs).

    A ``KeyboardInterrupt`` so that it is cleaned up exactly like Ctrl-C; ``signum`` tells
    them apart (exit status 128 + signum: 143, 129).
    """

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal_label(signum))
        self.signum = int(signum)


def exit_status(exc: KeyboardInterrupt) -> int:
    """The conventional exit status for a run stopped by ``exc``: 130 (SIGINT), 143 (SIGTERM)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def signal_label(signum: int) -> str:
    """``Ctrl-C`` for SIGINT, else the signal's name (``SIGTERM``), for messages."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    For a program's entry point (the ``veil`` CLI). Does nothing outside the main thread, and
    leaves a signal alone that is not at its default action: a program (or a parent, as with
    an inherited "ignore" or ``nohup``) that chose how it is handled keeps that choice.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [s for s in _KILLING if signal.getsignal(s) == signal.SIG_DFL]
    for s in taken:
        signal.signal(s, _raise_terminated)
    try:
        yield
    finally:
        for s in taken:
            signal.signal(s, signal.SIG_DFL)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held; hand held signals to their handlers afterwards.

    A second signal while the block runs is delivered at once, after the held one (a stuck
    block stays interruptible, and a handler that counts signals sees both). Only signals
    with a Python handler are held: at the default action (e.g. SIGTERM in a program that
    did not ask for :func:`terminate_as_interrupt`) or ignored, they act as they always do.
    Outside the main thread (where Python cannot set handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in INTERRUPT_SIGNALS}
    holding = [s for s, handler in previous.items() if callable(handler)]
    if not holding:
        yield
        return
    held: list = []

    def restore() -> None:
        for s in holding:
            signal.signal(s, previous[s])

    def deliver(pending: list) -> None:
        for signum, frame in pending:  # a handler that raises ends the delivery, as it would have
            handler = previous[signum]
            if callable(handler):  # only signals with a callable handler are held
                handler(signum, frame)

    def hold(signum, frame):
        held.append((signum, frame))
        if len(held) > 1:  # asked twice: stop holding, deliver now
            pending = held[:]
            held.clear()
            restore()
            deliver(pending)

    for s in holding:
        signal.signal(s, hold)
    try:
        yield
    finally:
        restore()
        pending = held[:]
        held.clear()
        deliver(pending)
