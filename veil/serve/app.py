"""The FastAPI application behind ``veil serve``: jobs, plans, exact frames and the review app.

Thin: media goes through :mod:`veil.io`, analysis and rendering through
:class:`veil.Anonymizer` in worker processes, edits through :mod:`veil.plan_edits` onto
:class:`veil.plan.Plan`. The OpenAPI page is at ``/docs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from .._version import __version__
from ..errors import MediaTooLargeError, UnsupportedMediaError, VeilError
from ..plan import Plan, PlanError, dumps, parse_plan
from ..io.frame_source import FrameSource
from ..plan_edits import Edit, apply_edit, follow, resolve_follows
from .frames import jpeg, render_preview
from .security import COOKIE, Guard, hash_token
from .store import ACTIVE, TERMINAL, JobStore
from .workers import Workers, analyze_job, render_job

__all__ = ["ServeSettings", "create_app"]

log = logging.getLogger("veil.serve")
STATIC = Path(__file__).parent / "static"
_CHUNK = 1 << 20


@dataclass
class ServeSettings:
    """Where state lives and what the server accepts."""

    data_dir: Path
    roots: list[Path] = field(default_factory=list)  # folders whose files may be opened by path
    max_upload_mb: int = 4096
    token_sha256: Optional[str] = None  # required when bound to a non-loopback address
    workers: int = 1
    preset: str = "balanced"
    sse_interval_s: float = 0.25
    prefetch: int = 0  # frames the player's decoder reads ahead after each request (0: off; benchmarks §10)


class PathIn(BaseModel):
    path: str
    preset: Optional[str] = None


class Reviewed(BaseModel):
    to_end: bool = True
    frame: Optional[int] = None


def create_app(settings: ServeSettings) -> FastAPI:
    settings.data_dir = Path(settings.data_dir)
    jobs_dir = settings.data_dir / "jobs"
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs_dir.mkdir(parents=True, exist_ok=True)
        store = JobStore(settings.data_dir / "serve.sqlite")
        n = store.interrupt_active()
        if n:
            log.warning("%d job(s) were running when the server last stopped: marked interrupted", n)
        state.update(store=store, workers=Workers(store, settings.workers), sources=OrderedDict(), plans=OrderedDict(),
                     filters={}, lock=threading.Lock(), detector=None)
        try:
            yield
        finally:
            state["workers"].shutdown()
            for src in state["sources"].values():
                src.close()

    app = FastAPI(title="veil serve", version=__version__, lifespan=lifespan,
                  description="Review and correct veil's redaction plans before anything is released.")
    app.add_middleware(Guard, token_sha256=settings.token_sha256)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def store() -> JobStore:
        return state["store"]

    def job_or_404(job_id: str) -> dict:
        job = store().get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def plan_of(job_id: str, fresh: bool = False) -> Plan:
        """The job's current plan. Readers share a parsed copy per version (a 1080p crowd's plan
        takes longer to validate than a frame to decode); editors get their own (``fresh``)."""
        job = job_or_404(job_id)
        key = (job_id, job["plan_version"])
        cached = state["plans"].get(key)
        if cached is not None and not fresh:
            return cached
        text = store().plan(job_id)
        if text is None:
            raise HTTPException(409, "the analysis has not finished")
        plan = parse_plan(json.loads(text))
        if not fresh:
            with state["lock"]:
                state["plans"][key] = plan
                while len(state["plans"]) > 8:
                    state["plans"].popitem(last=False)
        return plan

    def who(request: Request) -> str:
        name = (request.headers.get("x-veil-reviewer") or "reviewer").strip()
        return "".join(c for c in name if c.isprintable())[:64] or "reviewer"

    def public(job: dict) -> dict:
        out = {k: v for k, v in job.items() if k not in ("media", "settings", "output", "owned_media")}
        out["output_ready"] = job["status"] == "exported" and bool(job["output"]) and Path(job["output"]).is_file()
        return out

    # -- pages -----------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/login", include_in_schema=False)
    def login_page():
        return FileResponse(STATIC / "login.html")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        form = await request.form()
        token = str(form.get("token", ""))
        if settings.token_sha256 is None or hash_token(token) != settings.token_sha256:
            return RedirectResponse("/login?wrong=1", 303)
        resp = RedirectResponse("/", 303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    @app.get("/api/health")
    def health():
        return {"ok": True, "version": __version__}

    # -- jobs ------------------------------------------------------------------------------
    @app.post("/api/jobs", status_code=201, summary="Upload a media file (raw body) and analyse it")
    async def upload(request: Request, name: str = Query(..., description="file name, for its type"),
                     preset: Optional[str] = None):
        from ..io.paths import media_kind

        try:
            kind = media_kind(Path(name))
        except UnsupportedMediaError as exc:
            raise HTTPException(415, str(exc)) from None
        limit = settings.max_upload_mb << 20
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"the file is larger than the upload limit ({settings.max_upload_mb} MB)")
        job_dir = jobs_dir / f"upload-{uuid.uuid4().hex}"
        job_dir.mkdir(parents=True, exist_ok=True)
        media = job_dir / ("media" + Path(name).suffix.lower())
        size = 0
        try:
            with media.open("wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(413, f"the file is larger than the upload limit ({settings.max_upload_mb} MB)")
                    fh.write(chunk)
            if size == 0:
                raise HTTPException(422, "empty upload")
            return await run_in_threadpool(_start, Path(name).name, kind, media, preset, True, job_dir)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise

    @app.post("/api/jobs/from-path", status_code=201, summary="Analyse a file under a configured root")
    def from_path(body: PathIn):
        from ..io.paths import media_kind

        path = _under_roots(body.path, settings.roots)
        try:
            kind = media_kind(path)
        except UnsupportedMediaError as exc:
            raise HTTPException(415, str(exc)) from None
        job_dir = jobs_dir / f"path-{uuid.uuid4().hex}"
        job_dir.mkdir(parents=True, exist_ok=True)
        try:
            return _start(path.name, kind, path, body.preset, False, job_dir)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise

    def _start(name: str, kind: str, media: Path, preset: Optional[str], owned: bool, tmp_dir: Path) -> dict:
        from ..config import preset as get_preset

        try:
            total = _check_media(media, kind)
            cfg = get_preset(preset or settings.preset)
        except VeilError as exc:
            code = 415 if isinstance(exc, UnsupportedMediaError) else 413 if isinstance(exc, MediaTooLargeError) else 422
            raise HTTPException(code, str(exc).replace(str(media), name)) from None
        job_id = store().create(name, kind, media, cfg.model_dump(mode="json"), owned_media=owned)
        final = jobs_dir / job_id
        tmp_dir.rename(final)
        if owned:
            media = final / media.name
            store().update(job_id, media=str(media))
        store().update(job_id, total=total)
        state["workers"].submit(job_id, analyze_job)
        return public(job_or_404(job_id))

    @app.get("/api/jobs")
    def list_jobs():
        return [public(j) for j in store().list()]

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str):
        return public(job_or_404(job_id))

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete_job(job_id: str):
        job = job_or_404(job_id)
        if job["status"] in ACTIVE:
            raise HTTPException(409, "the job is running")
        _drop_source(job_id)
        store().delete(job_id)
        shutil.rmtree(jobs_dir / job_id, ignore_errors=True)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/events", summary="Progress as server-sent events, until the job stops")
    async def events(job_id: str):
        job_or_404(job_id)

        async def stream():
            last = None
            while True:
                job = await run_in_threadpool(store().get, job_id)
                if job is None:
                    return
                now = {k: job[k] for k in ("status", "stage", "done", "total", "error")}
                if now != last:
                    yield f"event: progress\ndata: {json.dumps(now)}\n\n"
                    last = now
                if job["status"] in TERMINAL:
                    return
                await asyncio.sleep(settings.sse_interval_s)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})

    # -- the plan --------------------------------------------------------------------------
    @app.get("/api/jobs/{job_id}/plan")
    def get_plan(job_id: str):
        job = job_or_404(job_id)
        text = store().plan(job_id)
        if text is None:
            raise HTTPException(409, "the analysis has not finished")
        return Response(text, media_type="application/json", headers={"x-plan-version": str(job["plan_version"])})

    @app.put("/api/jobs/{job_id}/plan", summary="Replace the plan (it must be for this job's file)")
    def put_plan(job_id: str, request: Request, body: dict = Body(...)):
        job = _editable(job_id)
        old = plan_of(job_id)
        try:
            new = parse_plan(body, "uploaded plan")
            new.check_matches(old.input.sha256, old.input.size)
            if new.input.frames != old.input.frames:
                raise PlanError(f"the plan has {new.input.frames} frames, the file {old.input.frames}")
            if any(t.follow for t in new.tracks):  # a hand-edited plan asking to follow a face
                resolve_follows(new, _source(job_id, job, new).frame, _detector(new))
                new = new.validated()
        except PlanError as exc:
            raise HTTPException(422, str(exc)) from None
        return _store_edit(job, dumps(new), request, "replaced the plan", None,
                           {"tracks": len(old.tracks)}, {"tracks": len(new.tracks)})

    @app.post("/api/jobs/{job_id}/edits", summary="One reviewer edit (decision, trim, delete, merge, add)")
    def edit(job_id: str, request: Request, body: Edit):
        job = _editable(job_id)
        plan = plan_of(job_id, fresh=True)  # edited in place
        follower = None
        if body.op == "add" and body.mode == "follow":
            src = _source(job_id, job, plan)
            follower = lambda i, box: follow(src.frame, plan.input.frames, _detector(plan), i, box)  # noqa: E731
        try:
            before, after = apply_edit(plan, body, follower)
            text = dumps(plan.validated())
        except PlanError as exc:
            raise HTTPException(422, str(exc)) from None
        detail = body.model_dump(exclude_none=True, exclude={"base_version"})
        return _store_edit(job, text, request, body.op, detail, before, after, body.base_version)

    def _forget_plans(job_id: str) -> None:
        """A new version may reuse the number of an undone one: drop the parsed copies."""
        with state["lock"]:
            for key in [k for k in state["plans"] if k[0] == job_id]:
                del state["plans"][key]

    def _store_edit(job, text, request, action, detail, before, after, base=None):
        try:
            version = store().push_plan(job["id"], text, base)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        _forget_plans(job["id"])
        store().record(job["id"], who(request), action, detail, before, after)
        if job["status"] == "exported" or job["reviewed_to_end"]:
            store().update(job["id"], status="review", reviewed_to_end=0, output=None)
        return {"version": version, "plan": json.loads(text)}

    @app.post("/api/jobs/{job_id}/undo")
    def undo(job_id: str, request: Request):
        return _move(job_id, request, -1)

    @app.post("/api/jobs/{job_id}/redo")
    def redo(job_id: str, request: Request):
        return _move(job_id, request, +1)

    def _move(job_id: str, request: Request, step: int):
        job = _editable(job_id)
        version = store().move_plan(job_id, step)
        if version is None:
            raise HTTPException(409, "nothing to undo" if step < 0 else "nothing to redo")
        store().record(job_id, who(request), "undo" if step < 0 else "redo", {"to_version": version})
        if job["status"] == "exported" or job["reviewed_to_end"]:
            store().update(job_id, status="review", reviewed_to_end=0, output=None)
        return {"version": version, "plan": json.loads(store().plan(job_id) or "null")}

    def _editable(job_id: str) -> dict:
        job = job_or_404(job_id)
        if job["status"] not in ("review", "exported"):
            raise HTTPException(409, f"the job is {job['status']}: the plan cannot be edited now")
        return job

    @app.get("/api/jobs/{job_id}/history", summary="Every reviewer action: who, when, what, before/after")
    def history(job_id: str):
        job_or_404(job_id)
        return store().history(job_id)

    # -- media and frames ------------------------------------------------------------------
    @app.get("/api/jobs/{job_id}/media", summary="The original media (range requests for the player)")
    def media(job_id: str):
        job = job_or_404(job_id)
        return FileResponse(job["media"], filename=job["name"], content_disposition_type="inline")

    @app.get("/api/jobs/{job_id}/frames/{index}.jpg", summary="One exact frame, original or as export renders it")
    def frame(job_id: str, index: int, view: str = Query("original", pattern="^(original|anonymized)$"),
              max_side: int = Query(0, ge=0, description="downscale for display (the frame stays exact in time)")):
        job = job_or_404(job_id)
        plan = plan_of(job_id)
        try:
            rgb = _source(job_id, job, plan).frame(index)
            if view == "anonymized":
                rgb = render_preview(rgb, plan, index, _filter(job_id, plan))
            rgb = _fit(rgb, max_side)
        except IndexError as exc:
            raise HTTPException(404, str(exc)) from None
        except VeilError as exc:
            raise HTTPException(422, str(exc)) from None
        return Response(jpeg(rgb), media_type="image/jpeg", headers={"cache-control": "no-store"})

    @app.get("/api/jobs/{job_id}/tracks/{track_id}/thumb.jpg", summary="A face thumbnail of a track")
    def thumb(job_id: str, track_id: int):
        import cv2

        job = job_or_404(job_id)
        plan = plan_of(job_id)
        try:
            t = plan.track(track_id)
        except PlanError as exc:
            raise HTTPException(404, str(exc)) from None
        f = max(t.frames, key=lambda e: (not e.interpolated, e.score))
        rgb = _source(job_id, job, plan, "thumbs").frame(f.index)  # its own decoder: the player never waits
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        crop = rgb[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
        if crop.size == 0:
            raise HTTPException(404, "the track's box is outside the frame")
        scale = 64 / crop.shape[0]
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), 64), interpolation=cv2.INTER_AREA)
        return Response(jpeg(crop, 85), media_type="image/jpeg", headers={"cache-control": "no-store"})

    def _source(job_id: str, job: dict, plan: Plan, role: str = "player") -> FrameSource:
        with state["lock"]:
            sources = state["sources"]
            key = (job_id, role)
            src = sources.get(key)
            if src is None or src.times != plan.input.timestamps:
                src = FrameSource(Path(job["media"]), job["kind"], plan.input.timestamps,
                                  prefetch=settings.prefetch if role == "player" else 0)
                sources[key] = src
            sources.move_to_end(key)
            while len(sources) > 8:
                sources.popitem(last=False)[1].close()
            return src

    def _drop_source(job_id: str) -> None:
        with state["lock"]:
            drop = [state["sources"].pop(k) for k in list(state["sources"]) if k[0] == job_id]
        for src in drop:
            src.close()

    def _filter(job_id: str, plan: Plan):
        from ..config import validated
        from ..render import build_filter

        key = (job_id, json.dumps(plan.settings.get("render", {}), sort_keys=True))
        if key not in state["filters"]:
            state["filters"][key] = build_filter(validated(plan.settings).render)
        return state["filters"][key]

    def _detector(plan: Plan):
        from ..config import validated
        from ..detect import build_detector

        if state["detector"] is None:
            state["detector"] = build_detector(validated(plan.settings).detect, batch=1)
        return state["detector"]

    # -- review and export -----------------------------------------------------------------
    @app.post("/api/jobs/{job_id}/reviewed", summary="Record that a person reviewed to the end")
    def reviewed(job_id: str, request: Request, body: Reviewed):
        job = _editable(job_id)
        plan = plan_of(job_id)
        if body.to_end and body.frame is not None and body.frame < plan.input.frames - 1:
            raise HTTPException(422, f"frame {body.frame} is not the last frame ({plan.input.frames - 1})")
        store().update(job_id, reviewed_to_end=int(body.to_end), reviewed_by=who(request),
                       reviewed_at=time.time())
        store().record(job_id, who(request), "reviewed to the end" if body.to_end else "review reopened",
                       {"plan_version": job["plan_version"]})
        return public(job_or_404(job_id))

    @app.post("/api/jobs/{job_id}/export", status_code=202, summary="Render the reviewed plan")
    def export(job_id: str, request: Request):
        job = job_or_404(job_id)
        if not job["reviewed_to_end"]:
            raise HTTPException(409, "review the job to the end before exporting")
        if not store().claim(job_id, ("review", "exported"), "exporting"):
            raise HTTPException(409, f"the job is {job['status']}")
        store().update(job_id, stage="rendering", done=0, output=None)
        store().record(job_id, who(request), "export requested", {"plan_version": job["plan_version"]})
        name = Path(job["name"])
        out = jobs_dir / job_id / f"{name.stem}_anonymized{name.suffix.lower()}"
        state["workers"].submit(job_id, render_job, str(out))
        return public(job_or_404(job_id))

    @app.get("/api/jobs/{job_id}/output", summary="The exported file (only once complete)")
    def output(job_id: str):
        job = job_or_404(job_id)
        if job["status"] != "exported" or not job["output"] or not Path(job["output"]).is_file():
            raise HTTPException(409, "no finished export")
        return FileResponse(job["output"], filename=Path(job["output"]).name)

    @app.get("/api/jobs/{job_id}/bundle", summary="Plan and reviewer history, as exported with the job")
    def bundle(job_id: str):
        job = job_or_404(job_id)
        return JSONResponse({"job": public(job), "plan": json.loads(store().plan(job_id) or "null"),
                             "history": store().history(job_id)})

    return app


def _fit(rgb, max_side: int):
    """Downscale (area filter) so that the long side is at most ``max_side`` (0: as is)."""
    import cv2

    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb
    k = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)


def _check_media(path: Path, kind: str) -> int:
    """Probe the file now, so a corrupt or mistyped upload is refused at once; frames."""
    if kind == "image":
        from ..io.images import read_image

        read_image(path)
        return 1
    from ..io.video import probe_video

    return probe_video(path).frames or 0


def _under_roots(raw: str, roots: list[Path]) -> Path:
    """The path, resolved (symlinks, ..), if it lies under one of the configured roots."""
    if not roots:
        raise HTTPException(403, "no roots are configured: start veil serve with --root")
    path = Path(raw).expanduser().resolve()
    for root in roots:
        if path.is_relative_to(Path(root).resolve()):
            if not path.is_file():
                raise HTTPException(404, f"{raw}: no such file")
            return path
    raise HTTPException(403, f"{raw} is not under a configured root")
