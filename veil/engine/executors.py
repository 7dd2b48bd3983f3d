"""Executors for :func:`veil.engine.segments.run_segmented` without Ray.

An executor is any object with ``map(fn, items) -> list``: ``fn`` is a top-level (picklable)
function, results come back in item order, and an exception from any item propagates. The
Ray engine provides one for a cluster; these two run on this machine.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable

__all__ = ["LocalExecutor", "ProcessExecutor"]


class LocalExecutor:
    """Serial, in this process (tests, and machines where processes do not pay)."""

    def map(self, fn: Callable, items: Iterable) -> list:
        return [fn(item) for item in items]


class ProcessExecutor:
    """A pool of ``workers`` processes (spawned: no forked copies of loaded models or threads).

    Each worker loads the detector once and keeps it across segments and calls; the pool lives
    until :meth:`close` (or the end of a ``with`` block). On Ctrl-C the workers, in the same
    process group, are interrupted too; pending items are cancelled and the pool is waited for,
    so no worker writes on after the caller has cleaned up (checked by hand: SIGINT during the
    render of a 4-segment clip left no file). As with any spawned pool, a script using it must
    guard its entry point with ``if __name__ == "__main__":``.
    """

    def __init__(self, workers: int = 2):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable, items: Iterable) -> list:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        futures = [self._pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            for f in futures:  # let running items finish or fail before the caller cleans up
                if not f.cancelled():
                    f.exception()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "ProcessExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
