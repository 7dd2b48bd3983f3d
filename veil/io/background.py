"""One background thread that runs submitted calls in order: encoding beside detection.

Encoding a frame (libx264, a few ms) and detecting faces in the next one (onnxruntime) both
release the GIL, so running them on two threads overlaps them; on the detect-every-k path,
where detection got cheap, the encoder was the largest fixed cost left. The contract a
privacy tool needs from such a thread:

* **Errors are not lost.** A call that raises stops the thread; the error is raised in the
  caller at its next :meth:`Background.submit` or at :meth:`Background.finish`, so the writer
  fails (and discards its temporary file) exactly as if it had called the function itself.
* **Nothing runs behind the caller's back.** Leaving the ``with`` block, normally or by an
  exception (KeyboardInterrupt included), waits for the thread: a container is never closed
  while a call still writes to it. On an exception (or :meth:`Background.abort`, or an
  interruption during the wait itself) the calls still queued are dropped.
* **Bounded memory.** At most ``depth`` calls wait; ``submit`` blocks when the queue is full.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Optional

__all__ = ["Background"]

_STOP = object()
_POLL = 0.1  # s: how often a blocked submit looks for the thread's error


class Background:
    """``with Background(depth) as bg: bg.submit(fn, *args) ...; bg.finish()``."""

    def __init__(self, depth: int = 8, name: str = "veil-background"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: Optional[BaseException] = None
        self._dropping = False
        # set by the thread when it ends; waited on instead of join(), whose interruption by
        # Ctrl-C can mark a thread as ended while it still runs (CPython 3.11, bpo-45274)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, *args) -> None:
        """Queue ``fn(*args)``; raises the error of an earlier call instead, if there was one."""
        while True:
            self._raise_error()
            try:
                self._queue.put((fn, args), timeout=_POLL)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every queued call ran; raise the first error one of them raised."""
        self._stop()
        self._raise_error()

    def __enter__(self) -> "Background":
        return self

    def abort(self) -> None:
        """Drop the calls still queued and wait for the one running, if any."""
        self._dropping = True
        self._stop()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._dropping = True
        self._stop()

    # -- the thread ------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            self._run_calls()
        finally:
            self._done.set()

    def _run_calls(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None or self._dropping:
                continue  # drain without running: the run failed
            fn, args = item
            try:
                fn(*args)
            except BaseException as exc:  # handed to the caller
                self._error = exc

    def _stop(self) -> None:
        """Wait for the thread to end. An interruption (Ctrl-C) while waiting drops what is
        still queued and waits on (a call in progress takes a frame's time), then is raised:
        the caller must never close a container the thread still writes to."""
        interrupted: Optional[BaseException] = None
        stop_sent = False
        while not self._done.is_set():
            try:
                if not stop_sent:
                    try:
                        self._queue.put(_STOP, timeout=_POLL)
                    except queue.Full:
                        continue
                    stop_sent = True
                self._done.wait(_POLL)
            except KeyboardInterrupt as exc:
                self._dropping = True
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted

    def _raise_error(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            self._dropping = True
            raise exc
