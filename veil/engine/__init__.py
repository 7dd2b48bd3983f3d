"""Engines: ways to run the one pipeline on more than one core or machine.

``local`` (the default) is the in-process path of :class:`veil.Anonymizer`: it needs nothing
started. ``ray`` runs the same work on a Ray cluster (``pip install 'veil[ray]'``), with the
same guarantees: every frame through detection, no partial output, audio kept.

- :mod:`veil.engine.engines`: the choice (``local`` / ``ray``) and its lifetime;
- :mod:`veil.engine.ray_cluster`: connecting to a cluster (``auto``, ``ray://host:port``) or
  starting a private one on 127.0.0.1, shut down at the end only if veil started it;
- :mod:`veil.engine.ray_executor`: :class:`RayExecutor`, the ``map(fn, items) -> list``
  executor on Ray tasks (a killed worker is retried once);
- :mod:`veil.engine.ray_folders`: image folders with Ray Data (an actor pool, one ONNX
  session per actor);
- :mod:`veil.engine.ray_streams`: many live streams as long-running actors;
- :mod:`veil.engine.segments`: a long video split at keyframes, analyzed and rendered in
  pieces through any executor (``map(fn, items) -> list``) and joined into the file the local
  path writes.
"""

from .engines import ENGINES, Engine

__all__ = ["ENGINES", "Engine"]
