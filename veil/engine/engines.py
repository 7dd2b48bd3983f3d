"""The engine a run uses: ``local`` (in this process, the default) or ``ray``.

An :class:`Engine` is cheap to make: nothing connects until the first piece of work needs
Ray, so ``--engine ray`` with nothing to do starts nothing. :meth:`Engine.close` disconnects
(and stops the Ray instance veil started, if it did); the Anonymizer closes its engine at the
end of a ``with`` block and the CLI at the end of each command.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError

__all__ = ["ENGINES", "Engine"]

#: the engine names ``--engine`` accepts
ENGINES = ("local", "ray")


class Engine:
    """``name``: ``local`` or ``ray``; ``address``: where the Ray cluster is (see
    :mod:`veil.engine.ray_cluster`; None starts a private one); ``workers``: Ray workers for
    folders (default: as many as the cluster's CPUs allow, ``threads`` CPUs each);
    ``threads``: onnxruntime threads per worker, also the CPUs Ray reserves for each;
    ``segment_s``: target length of a video's segments (cut at the next keyframe)."""

    def __init__(self, name: str = "local", address: str | None = None, workers: int | None = None,
                 threads: int = 1, segment_s: float = 30.0):
        if name not in ENGINES:
            raise ConfigError(f"unknown engine {name!r}; choose {' or '.join(ENGINES)}")
        if address is not None and name != "ray":
            raise ConfigError("--address needs --engine ray")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self.name, self.address, self.workers, self.threads = name, address, workers, threads
        self.segment_s = segment_s
        self._cluster = None

    @property
    def distributed(self) -> bool:
        return self.name == "ray"

    def cluster(self):
        """The connected :class:`~veil.engine.ray_cluster.RayCluster` (connecting on first use)."""
        if not self.distributed:
            raise ConfigError("this run uses the local engine")
        if self._cluster is None:
            from .ray_cluster import RayCluster

            self._cluster = RayCluster(self.address).connect()
        return self._cluster

    def worker_count(self) -> int:
        """Ray workers for a folder: ``workers``, or the cluster's CPUs / ``threads``."""
        return self.workers or max(1, self.cluster().cpus() // self.threads)

    def executor(self, on_done: Callable[[int, int], None] | None = None):
        """A ``map(fn, items) -> list`` executor on Ray tasks, ``threads`` CPUs each."""
        from .ray_executor import RayExecutor

        self.cluster()
        return RayExecutor(num_cpus=self.threads, on_done=on_done)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __repr__(self) -> str:
        return f"Engine({self.name!r}, address={self.address!r})"

