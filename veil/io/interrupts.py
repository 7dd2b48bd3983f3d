"""Hold Ctrl-C while a file is in a state that an interruption would damage.

Python raises ``KeyboardInterrupt`` at whatever bytecode the main thread runs when SIGINT
arrives. Inside an encoder call that is between "the encoder handed out a packet" and "the
muxer wrote it": the packet is lost, and a stream that is finalized afterwards (live runs
keep what they wrote on Ctrl-C) misses a frame in the middle. Writers therefore run their
encode / mux / trailer steps inside :func:`sigint_deferred`; the interruption is delivered
as soon as the step is done, so Ctrl-C still stops the run within one frame.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["sigint_deferred"]


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Run the block with SIGINT held; hand a held SIGINT to the previous handler afterwards.

    A second SIGINT while the block runs is delivered at once (a stuck block stays
    interruptible). Outside the main thread (where Python cannot set handlers) and when the
    handler is not a Python callable (ignored / default action), this does nothing.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    held: list = []

    def hold(signum, frame):
        if held:  # asked twice: stop holding, deliver now
            held.clear()
            signal.signal(signal.SIGINT, previous)
            previous(signum, frame)
        else:
            held.append((signum, frame))

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(*held[0])
