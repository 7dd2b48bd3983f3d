"""Connecting veil to Ray: an existing cluster, or a private instance on this machine.

``address``:

- ``None``: start a Ray instance for this run only, on 127.0.0.1 (its node address: workers
  and driver talk over loopback), with a small object store (veil moves paths and small
  results through Ray, never frames), no dashboard; it is shut down when the run ends. Ray's
  own gRPC servers still *listen* on all interfaces (Ray 2.60 has no switch for that; checked
  with ``ss -ltnp``); its token authentication, on by default in that version, guards them.
- ``"auto"``: the cluster this machine belongs to (``ray start`` / KubeRay set it up);
- ``"ray://host:port"`` (Ray Client) or ``"host:port"`` (the GCS of a cluster).

A cluster veil connected to is left running; only the connection is closed. When this
process is already connected (a notebook, a test that made its own cluster), that connection
is used and left open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Any, Iterator

from ..errors import ConfigError
from ..io.interrupts import INTERRUPT_SIGNALS

__all__ = ["RayCluster", "import_ray", "LOCAL_OBJECT_STORE_BYTES"]

log = logging.getLogger("veil")

#: object store of a private instance: paths, plans and face boxes travel through it, not frames
LOCAL_OBJECT_STORE_BYTES = 200 * 2**20


def import_ray():
    """The ``ray`` module, or a one-line ConfigError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'veil[ray]'") from None
    return ray


class RayCluster:
    """A connection to Ray for one run (a context manager); :meth:`close` undoes only what
    :meth:`connect` did."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address, self.num_cpus = address, num_cpus
        self.started = False  # we started the instance: shut it down at the end
        self.connected = False  # we opened the connection: close it at the end

    def connect(self) -> "RayCluster":
        ray = import_ray()
        if ray.is_initialized():
            return self
        # no usage statistics sent to Ray's project (nor Prometheus queries for them) unless
        # the operator asked for them: veil does not report what it runs
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING, "configure_logging": False}
        if self.address is None:
            kwargs.update(_node_ip_address="127.0.0.1", object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                          num_cpus=self.num_cpus)
            self.started = True
        else:
            kwargs["address"] = self.address
            kwargs.pop("include_dashboard")
        try:
            with _signal_handlers_kept():  # ray.init sets its own SIGTERM handler (sys.exit(15))
                ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            self.started = False
            where = self.address or "a local Ray instance"
            raise ConfigError(f"--engine ray: cannot connect to {where}: {str(exc).splitlines()[0]}") from None
        self.connected = True
        log.debug("ray: %s (%s CPUs)", "started on 127.0.0.1" if self.started else f"connected to {self.address}",
                  ray.cluster_resources().get("CPU"))
        return self

    def cpus(self) -> int:
        """CPUs the cluster has (at least 1)."""
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self.connected:
            import ray

            ray.shutdown()  # a private instance stops with it; a cluster only loses this driver
            self.connected = self.started = False

    def __enter__(self) -> "RayCluster":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Put back the handlers of the stop signals (SIGINT, SIGTERM, SIGHUP) after the block: ``ray.init`` replaces
    SIGTERM's with one that exits at once, which would skip veil's cleanup and its exit
    status (143, "interrupted"; see veil.io.interrupts). veil itself sets none here."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            if handler is not None:
                signal.signal(s, handler)
