""":class:`RayExecutor`: ``map(fn, items) -> list`` on Ray tasks, for
:func:`veil.engine.segments.run_segmented` and anything else that splits work into items.

Failures, decided here once:

- a worker process that dies while running an item (killed, out of memory, its node lost) is
  a *system* failure: Ray runs the item again, once (``max_retries=1``), on any node;
- an item that dies twice fails the whole map with :class:`WorkerLostError` (a
  :class:`~veil.errors.ProcessingError`: one line, exit code 6); the caller writes nothing;
- an exception that ``fn`` raises is *not* retried by Ray (``retry_exceptions=False``): veil's
  own errors (a damaged input, a bad setting) would fail again; the exception itself reaches
  the caller, unwrapped, so it keeps its type and one-line message. (The segments engine
  retries ordinary failures once itself, in its own layer.)
- Ctrl-C (``KeyboardInterrupt``) in the driver cancels every item still queued or running
  (the workers are interrupted) and waits for them before it propagates, so no worker writes
  on after the caller has cleaned up.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ..errors import ProcessingError
from .ray_cluster import import_ray

__all__ = ["RayExecutor", "WorkerLostError", "MAX_RETRIES", "lost_worker_errors"]

log = logging.getLogger("veil")

#: times Ray reruns an item whose worker died (then the map fails)
MAX_RETRIES = 1


class WorkerLostError(ProcessingError):
    """An item's worker died on every attempt."""


def _call(fn: Callable, item):
    return fn(item)


class RayExecutor:
    """Runs ``fn`` on each item as a Ray task using ``num_cpus`` CPUs; results in item order.

    ``on_done(n, total)`` is called in the driver as items finish (one progress display for
    all workers). Connect to Ray first (:class:`veil.engine.ray_cluster.RayCluster`).
    """

    def __init__(self, num_cpus: float = 1, on_done: Callable[[int, int], None] | None = None,
                 max_retries: int = MAX_RETRIES):
        self.num_cpus, self.on_done, self.max_retries = num_cpus, on_done, max_retries

    def map(self, fn: Callable, items: Iterable) -> list:
        ray = import_ray()
        task = ray.remote(_call).options(num_cpus=self.num_cpus, max_retries=self.max_retries,
                                         retry_exceptions=False, name=getattr(fn, "__name__", "veil"))
        fn_ref = ray.put(fn)
        refs = [task.remote(fn_ref, item) for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    results[index[ref]] = _get(ray, ref, index[ref])
                if self.on_done is not None:
                    self.on_done(len(refs) - len(pending), len(refs))
        except BaseException:
            _cancel(ray, pending)
            raise
        return results


def _get(ray, ref, i: int):
    """One item's result; its own exception unwrapped, a lost worker as WorkerLostError."""
    from ray import exceptions as rx

    try:
        return ray.get(ref)
    except rx.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except lost_worker_errors(rx) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkerLostError(f"item {i}: its Ray worker died {MAX_RETRIES + 1} times ({type(exc).__name__}: "
                              f"{first}); nothing written") from None


def lost_worker_errors(rx) -> tuple[type[BaseException], ...]:
    """Ray's exceptions for an item whose worker (or node, or result) was lost."""
    names = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OutOfMemoryError", "ActorDiedError")
    return tuple(getattr(rx, n) for n in names if hasattr(rx, n))


def _cancel(ray, refs: list) -> None:
    """Stop the items still queued or running, and wait until they have."""
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 -- finished meanwhile, or already gone
            pass
    for ref in refs:
        try:
            ray.get(ref, timeout=30)
        except Exception:  # noqa: BLE001 -- cancelled: that is what we asked for
            pass
