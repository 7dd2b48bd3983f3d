"""Many live streams on Ray: one long-running actor per source, restarted when it dies.

Each :class:`StreamActor` holds its own :class:`~veil.Anonymizer` (its own detector session,
``threads`` onnxruntime threads on as many reserved CPUs) and runs
:meth:`veil.Anonymizer.stream` for one source: the same bounded-latency policy as
``veil stream`` (late frames dropped before processing, never sent raw), each stream with its
own latency bound, unaffected by the others' load beyond the CPUs they share.

Failures: an actor process that dies (killed, out of memory, its node lost) is restarted by
Ray and its stream started again from the live source (``restarts`` times, default 3); the
outage is a gap in the output, never raw frames. A file output is written atomically by each
attempt, so a restarted recording replaces the interrupted attempt's, never appends to it. A
stream that fails inside veil (a bad URL, a source that stays away past its reconnections)
is not restarted: its error is reported and the other streams go on.

Stopping: :func:`run_streams` asks every actor to finish (the frames in flight are written, a
file finalized) when ``stop`` is set or on Ctrl-C; a second Ctrl-C kills the actors.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .ray_cluster import import_ray
from .ray_executor import lost_worker_errors

__all__ = ["StreamActor", "StreamResult", "run_streams", "RESTARTS"]

log = logging.getLogger("veil")

#: times a stream's actor is restarted after its process died
RESTARTS = 3


class StreamActor:
    """One source -> one output, for as long as the source runs (a Ray actor class)."""

    def __init__(self, make, config_json: str, source: str, output: str, options):
        """``make``: the :class:`~veil.Anonymizer` class the driver runs (given, not imported:
        the engine sits below the API that dispatches to it)."""
        from ..config import Config

        self.anon = make(Config.model_validate_json(config_json))
        self.source, self.output, self.options = source, output, options
        self.stop_event = threading.Event()
        self.frames = 0

    def pid(self) -> int:
        return os.getpid()

    def progress(self) -> dict[str, int]:
        return {"pid": os.getpid(), "frames": self.frames}

    def run(self) -> dict[str, Any]:
        from ..audit.outputs import item_facts

        def on_frame(n: int) -> None:
            self.frames = n

        try:
            item = self.anon.stream(self.source, self.output, self.options, on_frame=on_frame, stop=self.stop_event)
        except Exception as exc:  # noqa: BLE001 -- veil's and others: the stream's error, reported, not restarted
            item = self.anon.report.items[-1]
            return {"status": "error", "error": item.error or f"{type(exc).__name__}: {exc}", "facts": item_facts(item),
                    "stream": item.extra.get("stream", {}), "pid": os.getpid()}
        return {"status": item.status, "error": None, "facts": item_facts(item), "stream": item.extra.get("stream", {}),
                "pid": os.getpid()}

    def stop(self) -> None:
        self.stop_event.set()


@dataclass
class StreamResult:
    """What one stream did: ``status`` ok or error, its error, frames in and out, drops,
    reconnections (from its last attempt) and the worker pids that ran it (more than one:
    the actor was restarted)."""

    source: str
    output: str
    status: str = "ok"
    error: str | None = None
    stream: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)


def run_streams(make, config, pairs: list[tuple[str, str]], options, engine, stop: threading.Event | None = None,
                restarts: int = RESTARTS, on_update: Callable[[list[dict[str, int]]], None] | None = None,
                poll_s: float = 1.0) -> list[StreamResult]:
    """Run every ``(source, output)`` pair as a Ray actor (each with ``make(config)``, an
    :class:`~veil.Anonymizer`) until all have ended (or ``stop``
    is set, then each finishes cleanly). ``on_update`` gets each stream's worker pid and
    frame count (``{"pid", "frames"}``, empty while it restarts) about every ``poll_s``
    seconds (one display for all)."""
    ray = import_ray()
    from ray import exceptions as rx

    options = _outputs_checked(pairs, options)
    engine.cluster()
    config_json = config.updated(detect={"threads": engine.threads}).model_dump_json()
    actor_cls = ray.remote(StreamActor).options(num_cpus=engine.threads, max_restarts=restarts,
                                                max_task_retries=restarts, max_concurrency=4)
    results = [StreamResult(source=str(s), output=str(o)) for s, o in pairs]
    actors = [actor_cls.remote(make, config_json, s, o, options) for s, o in pairs]
    runs = {a.run.remote(): k for k, a in enumerate(actors)}
    pending = list(runs)
    asked_to_stop = False
    lost: tuple[type[BaseException], ...] = (rx.RayActorError, *lost_worker_errors(rx))
    try:
        while pending:
            if stop is not None and stop.is_set() and not asked_to_stop:
                asked_to_stop = True
                for a in actors:
                    a.stop.remote()
            done, pending = ray.wait(pending, num_returns=1, timeout=poll_s)
            for ref in done:
                res = results[runs[ref]]
                try:
                    out = ray.get(ref)
                except lost as exc:  # killed, out of memory, node lost: restarts spent
                    res.status, res.error = "error", f"its Ray worker was lost and not restarted ({type(exc).__name__}: " \
                                                     f"{_first_line(exc)})"
                    continue
                res.status, res.error = out["status"], out["error"]
                res.stream, res.facts = out["stream"], out["facts"]
                res.pids.append(out["pid"])
            if on_update is not None and pending:
                on_update(_frames(ray, actors))
    except KeyboardInterrupt:
        for a in actors:  # first Ctrl-C: finish cleanly; a second one lands here again and kills
            a.stop.remote()
        try:
            ray.get(pending, timeout=60)
        finally:
            for a in actors:
                ray.kill(a)
        raise
    for a in actors:
        ray.kill(a)
    return results


def _frames(ray, actors) -> list[dict[str, int]]:
    """Each stream's worker pid and frames so far (empty while its actor restarts)."""
    out = []
    for a in actors:
        try:
            out.append(ray.get(a.progress.remote(), timeout=5))
        except Exception:  # noqa: BLE001 -- restarting, or gone
            out.append({})
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _outputs_checked(pairs: list[tuple[str, str]], options):
    """Without ``overwrite``, a file output that exists is refused here, before any actor
    starts. The actors then write with ``overwrite``: an actor restarted after its stream had
    finished (killed as it ended) records the stream again and must replace its own earlier
    recording, not fail on it."""
    import dataclasses

    from ..io.live.endpoints import parse_sink, refuse_existing

    if not options.overwrite:
        for _, out in pairs:
            refuse_existing(parse_sink(out, options), options)
    return dataclasses.replace(options, overwrite=True)
