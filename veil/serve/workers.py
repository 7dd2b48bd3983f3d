"""Jobs run in worker processes (analysis and rendering are CPU-heavy; the web server stays
responsive). Workers report progress and results through the job store, which the server
streams to the browser. A worker that dies marks its job failed; what it was writing goes to
temporary files that are never offered for download (veil's writers are all-or-nothing)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from .store import JobStore

__all__ = ["Workers", "analyze_job", "render_job"]

log = logging.getLogger("veil.serve")
_PROGRESS_EVERY_S = 0.25


def _reason(exc: BaseException) -> str:
    from ..errors import VeilError

    return str(exc).splitlines()[0] if isinstance(exc, VeilError) else f"internal error ({exc.__class__.__name__})"


class _Progress:
    """on_frame callback writing to the store at most every 0.25 s."""

    def __init__(self, store: JobStore, job_id: str):
        self.store, self.job_id, self.last = store, job_id, 0.0

    def __call__(self, n: int) -> None:
        now = time.monotonic()
        if now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            self.store.update(self.job_id, done=n)


def analyze_job(db: str, job_id: str) -> None:
    """Worker: detect, track and decide; store the plan as version 1."""
    from ..api import Anonymizer
    from ..config import validated
    from ..plan import dumps

    store = JobStore(Path(db))
    job = store.get(job_id)
    if job is None or not store.claim(job_id, ("queued",), "analyzing"):
        return
    try:
        store.update(job_id, stage="analyzing")
        anon = Anonymizer(validated(job["settings"]))
        plan = anon.analyze(Path(job["media"]), on_frame=_Progress(store, job_id))
        store.push_plan(job_id, dumps(plan))
        store.record(job_id, "veil", "analyzed", {"tracks": len(plan.tracks), "frames": plan.input.frames})
        store.update(job_id, status="review", stage=None, done=plan.input.frames, total=plan.input.frames)
    except BaseException as exc:  # noqa: BLE001 -- any failure ends the job, with one line
        store.update(job_id, status="failed", stage=None, error=_reason(exc))
        if not isinstance(exc, Exception):
            raise


def render_job(db: str, job_id: str, out: str) -> None:
    """Worker: render the job's current plan; the output appears only when complete."""
    from ..api import Anonymizer
    from ..plan import parse_plan

    store = JobStore(Path(db))
    job = store.get(job_id)
    if job is None or job["status"] != "exporting":
        return
    try:
        text = store.plan(job_id)
        assert text is not None, "a job is exported from its reviewed plan"
        plan = parse_plan(json.loads(text))
        anon = Anonymizer.for_plan(plan)
        anon.render(Path(job["media"]), plan, Path(out), overwrite=True, on_frame=_Progress(store, job_id))
        store.record(job_id, "veil", "exported", {"plan_version": job["plan_version"], "output": Path(out).name})
        # the plan and the reviewers' history travel with the export
        (Path(out).parent / "plan.json").write_text(text, encoding="utf-8")
        (Path(out).parent / "history.json").write_text(json.dumps(store.history(job_id), indent=1), encoding="utf-8")
        store.update(job_id, status="exported", stage=None, output=str(out), done=plan.input.frames)
    except BaseException as exc:  # noqa: BLE001
        store.update(job_id, status="failed", stage=None, error=_reason(exc), output=None)
        if not isinstance(exc, Exception):
            raise


class Workers:
    """A pool of spawned processes (spawn: no inherited locks, threads or signal state)."""

    def __init__(self, store: JobStore, processes: int = 1):
        self.store = store
        self.pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, job_id: str, fn, *args) -> Future:
        fut = self.pool.submit(fn, str(self.store.path), job_id, *args)
        fut.add_done_callback(lambda f: self._died(job_id, f))
        return fut

    def _died(self, job_id: str, fut: Future) -> None:
        """A worker process that crashed (or a pool shut down) leaves its job failed, not running."""
        exc = fut.exception() if not fut.cancelled() else None
        if fut.cancelled() or exc is not None:
            job = self.store.get(job_id)
            if job is not None and job["status"] in ("queued", "analyzing", "exporting"):
                self.store.update(job_id, status="failed", stage=None,
                                  error=f"the worker stopped ({exc.__class__.__name__ if exc else 'cancelled'})")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
