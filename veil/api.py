"""The Python API: :class:`Anonymizer`, a thin layer over :class:`~veil.pipeline.Pipeline`
and the readers and writers in :mod:`veil.io`. The CLI is a thin layer over this.

    >>> import veil
    >>> anon = veil.Anonymizer(filter="pixelate")            # doctest: +SKIP
    >>> result = anon.frame(rgb)                              # ndarray in, ndarray out
    >>> anon.image("photo.jpg", "photo_anon.jpg")
    >>> anon.video("clip.mp4", "clip_anon.mp4")

Reports: ``Anonymizer(report_path="report.json")`` records every face of every frame (on disk,
in the report's folder, while the run goes) and :meth:`Anonymizer.write_report` writes them out.
Without it only counts are kept: per-frame records would grow with the length of a video.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from .config import Config, preset as get_preset
from .errors import ConfigError, MediaNotFoundError, OutputError, VeilError
from .faces import Faces
from .io.paths import check_output_path, default_output, make_folder, media_kind, walk_media
from .models import sha256_file
from .pipeline import FrameResult, Pipeline
from .report import ItemReport, RunReport
from .report.frame_log import FrameLog
from .stages import Item

log = logging.getLogger("veil")

__all__ = ["Anonymizer"]


def _config_from(config: Config | None, preset: str, overrides: dict[str, Any]) -> Config:
    """Apply flat keyword overrides (``filter="pixelate"``) to the right config section."""
    cfg = config if config is not None else get_preset(preset)
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        owners = [name for name, sub in type(cfg).model_fields.items() if key in getattr(sub.annotation, "model_fields", {})]
        if not owners:
            raise ConfigError(f"unknown setting {key!r}")
        sections.setdefault(owners[0], {})[key] = value
    return cfg.updated(**sections) if sections else cfg


class Anonymizer:
    """Detect and anonymize faces in frames, image files and video files.

    Args:
        config: a full :class:`~veil.config.Config`; defaults to the ``preset``.
        preset: ``fast``, ``balanced`` (default), ``thorough`` or ``deface``.
        report_path: where :meth:`write_report` writes the run report; per-frame face records
            are kept (on disk) only when this is given. Checked here, before any work.
        **overrides: any config field by name, e.g. ``filter="solid", color="#ff00ff"``,
            ``threshold=0.3``, ``max_side=0``. A blur/pixelate ``strength`` below the filter's
            measured floor raises :class:`~veil.errors.ConfigError` unless ``allow_weak=True``
            (then a warning is logged).
        engine: ``local`` (default: in this process) or ``ray`` (``pip install 'veil[ray]'``):
            folders, videos and renders run on a Ray cluster, see :mod:`veil.engine`. Use the
            Anonymizer in a ``with`` block (or call :meth:`close`) to disconnect at the end.
        address: the Ray cluster (``auto``, ``ray://host:port``); None starts a private Ray
            instance on 127.0.0.1 for this Anonymizer, stopped by :meth:`close`.
        workers: Ray workers for image folders (default: the cluster's CPUs).
    """

    def __init__(self, config: Config | None = None, *, preset: str = "balanced",
                 report_path: Path | str | None = None, engine: str = "local", address: str | None = None,
                 workers: int | None = None, **overrides: Any):
        from .engine import Engine

        self.engine = Engine(engine, address, workers)
        self.config = _config_from(config, preset, overrides)
        self.report_path = Path(report_path) if report_path is not None else None
        frames = _frame_log_for(self.report_path) if self.report_path is not None else None
        self.pipeline = Pipeline(self.config)
        self.report = RunReport(settings=self.config.model_dump(mode="json"), model=self.model_info,
                                hides=self.pipeline.anonymizes, frames=frames)
        if self.config.render.weak:  # only reachable with allow_weak: the config refuses it otherwise
            log.warning("warning: weak anonymization: %s; allowed by --allow-weak", self.config.render.weak_message())

    @property
    def model_info(self) -> dict[str, Any]:
        return self.pipeline.model_info

    # -- frames ----------------------------------------------------------------------
    def frame(self, rgb: np.ndarray) -> FrameResult:
        """Anonymize one RGB uint8 frame; returns the new frame and the faces found."""
        return self.pipeline.process([_check_frame(rgb)])[0]

    def detect(self, rgb: np.ndarray, min_score: float | None = None) -> Faces:
        """Faces in one RGB frame, down to ``min_score`` (default: the operating threshold)."""
        return self.pipeline.detect([_check_frame(rgb)], min_score)[0]

    # -- files -------------------------------------------------------------------------
    def image(self, src: Path | str, dst: Path | str | None = None, overwrite: bool = False) -> ItemReport:
        """Anonymize an image file (EXIF orientation applied, metadata stripped by default)."""
        from .io.images import read_image, write_bytes_per_pixel, write_image

        src = Path(src)
        dst = Path(dst) if dst is not None else default_output(src)
        item = ItemReport(input=str(src), kind="image", output=str(dst))
        with self._item(item, src, dst, overwrite):
            loaded = read_image(src, max_pixels=self.config.image.max_pixels,
                                max_bytes=self.config.image.max_memory_mb * 2**20,
                                then_bytes_per_pixel=3 + write_bytes_per_pixel(dst))  # the anonymized copy, written
            self.pipeline.begin_item(Item("image", loaded.camera_tags()))  # EXIF focal length
            result = self.pipeline.process([loaded.rgb])[0]
            item.add_frame(0, result.faces)
            _stage_report(item, self.pipeline)
            write_image(loaded, result.frame, dst, keep_metadata=self.config.image.keep_metadata,
                        quality=self.config.image.quality, replace=overwrite)
        return item

    def video(self, src: Path | str, dst: Path | str | None = None, overwrite: bool = False,
              on_frame: Callable[[int], None] | None = None, on_info: Callable[[Any], None] | None = None) -> ItemReport:
        """Anonymize a video file; audio is copied, timing and resolution are kept.

        A rotated (phone) clip is processed and written upright, in display orientation; the
        report's boxes are in that frame (``video.rotation`` says what turn was applied).
        The file is opened once: ``on_info`` gets its :class:`~veil.io.reader.VideoInfo`
        (frame count for a progress bar) before the first frame is processed."""
        from .io.video import transcode_video

        src = Path(src)
        dst = Path(dst) if dst is not None else default_output(src)
        if self.engine.distributed:
            from .engine.ray_video import anonymize_video

            return anonymize_video(self, src, dst, overwrite, on_frame)
        item = ItemReport(input=str(src), kind="video", output=str(dst))
        with self._item(item, src, dst, overwrite):
            opened: list = []  # the input's VideoInfo, from the one open

            def info_of(info) -> None:
                opened.append(info)
                if on_info is not None:
                    on_info(info)

            def process(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
                fps = float(opened[0].fps) if opened[0].fps else None
                if item.input_observers:  # e.g. monitoring: input statistics from this one decode
                    frames = _observed(frames, item.input_observers, opened[0].frames)
                for i, res in enumerate(self.pipeline.run(frames, fps)):
                    item.add_frame(i, res.faces, i / fps if fps else None)
                    yield res.frame

            stats = transcode_video(src, dst, process, self.config.video, on_frame=on_frame, replace=overwrite,
                                    on_info=info_of)
            info = opened[0]
            _stage_report(item, self.pipeline)
            item.extra["video"] = {"width": stats.width, "height": stats.height,
                                   "fps": float(stats.fps) if stats.fps else None,
                                   "frames": stats.frames_out, "audio_copied": stats.audio_copied,
                                   # the turn applied to the stored frames: boxes and output are upright
                                   "rotation": info.rotation, "mirrored": info.mirrored}
        return item

    def stream(self, src: str | Path, dst: str | Path, options=None, on_frame: Callable[[int], None] | None = None,
               stop=None) -> ItemReport:
        """Anonymize a live source (camera, RTSP/HTTP/HLS/UDP/TCP URL, ``-`` for stdin) into a
        file, ``-`` (stdout) or a network URL, with bounded latency.

        Frames that fall behind are dropped before processing, never written raw. Tracking
        runs without look-ahead (it would add its length to the latency); coasting still
        bridges missed detections. ``options`` is a :class:`veil.io.stream.StreamOptions`.
        """
        from .io.stream import StreamOptions, anonymize_stream, redact_url

        opts = options or StreamOptions()
        item = self.report.add(ItemReport(input=redact_url(str(src)), kind="stream", output=str(dst)))
        live_cfg = self.config.updated(track={"lookahead_s": 0.0}, video={"batch": 1})
        # its own stages (tracking without look-ahead); only the loaded detector is shared
        pipeline = Pipeline(live_cfg, detector=self.pipeline.detector, timings=self.pipeline.timings)
        t0 = time.perf_counter()

        def process(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for i, res in enumerate(pipeline.run(frames, item=Item("stream"))):
                item.add_frame(i, res.faces)
                yield res.frame

        stats = None
        try:
            stats = anonymize_stream(src, dst, process, self.config.video, opts, on_frame=on_frame, stop=stop)
        except BaseException as exc:
            item.status, item.error = "error", str(exc) if isinstance(exc, VeilError) else exc.__class__.__name__
            stats = getattr(exc, "stream_stats", None)
            raise
        finally:
            item.seconds = time.perf_counter() - t0
            _stage_report(item, pipeline)
            if stats is not None:
                item.extra["stream"] = {"frames_in": stats.frames_in, "frames_out": stats.frames_out,
                                        "dropped": stats.dropped, "reconnects": stats.reconnects,
                                        "latency_max_s": round(stats.latency_max_s, 3), "ended": stats.ended}
        return item

    def streams(self, pairs: list[tuple[str, str]], options=None, stop=None,
                on_update: Callable[[list[dict[str, int]]], None] | None = None) -> list[ItemReport]:
        """Several live sources at once, ``(source, output)`` pairs, on the Ray engine: one
        long-running actor each, restarted if its process dies (see
        :mod:`veil.engine.ray_streams`); each keeps its own latency bound. Returns one item per
        stream (added to the report); a stream that failed is an error item, the others go on."""
        from .engine.ray_streams import run_streams
        from .io.stream import StreamOptions, redact_url

        if not self.engine.distributed:
            raise ConfigError("several streams at once need --engine ray")
        t0 = time.perf_counter()
        results = run_streams(type(self), self.config, [(str(s), str(o)) for s, o in pairs], options or StreamOptions(),
                              self.engine, stop=stop, on_update=on_update)
        items = []
        for res in results:
            item = self.report.add(ItemReport(input=redact_url(res.source), kind="stream", output=res.output,
                                              status=res.status, error=res.error))
            counts = res.facts.get("counts", {})
            item.n_frames, item.n_faces = counts.get("frames", 0), counts.get("faces", 0)
            item.n_anonymized = counts.get("anonymized", 0)
            item.seconds = time.perf_counter() - t0
            item.extra["stream"] = res.stream
            item.extra["workers"] = res.pids
            items.append(item)
        return items

    # -- plans: analysis and rendering as two steps ---------------------------------------
    def analyze(self, src: Path | str, on_frame: Callable[[int], None] | None = None):
        """Detect, track, annotate and decide, without rendering: the :class:`veil.plan.Plan`
        of ``src`` (an image or a video), for a person to review and ``render`` to apply."""
        from ._version import __version__
        from .plan import InputInfo, Plan
        from .plan_faces import PlanCollector

        src = Path(src)
        if self.config.depth.background_beyond is not None:
            raise ConfigError("--background-beyond cannot be planned (it needs dense depth at render time); "
                              "use veil anonymize")
        collector, times, shape, fps = PlanCollector(), [], [], None
        if media_kind(src) == "image":
            from .io.images import read_image

            loaded = read_image(src, max_pixels=self.config.image.max_pixels)
            self.pipeline.begin_item(Item("image", loaded.camera_tags()))
            collector.add(0, self.pipeline.process([loaded.rgb], render=False)[0].faces)
            times, shape, kind = [0.0], [loaded.rgb.shape[:2]], "image"
        elif self.engine.distributed:
            from .engine.segments import analyze_segmented

            executor = self.engine.executor()
            return analyze_segmented(src, self.config, executor, segment_s=self.engine.segment_s).plan
        else:
            from .io.video import decode_video

            opened: list = []  # the input's VideoInfo, from the one open
            decoded = decode_video(src, self.config.video, on_info=opened.append)

            def frames() -> Iterator[np.ndarray]:
                for arr, t in decoded:
                    times.append(t)
                    if not shape:
                        shape.append(arr.shape[:2])
                    yield arr

            stream = frames()
            first = next(stream, None)  # opens the file: its frame rate, before the pipeline starts
            fps = float(opened[0].fps) if opened and opened[0].fps else None
            try:
                for i, res in enumerate(self.pipeline.run(_chain(first, stream), fps, render=False)):
                    collector.add(i, res.faces)
                    if on_frame is not None:
                        on_frame(i + 1)
            finally:
                self.pipeline.rendering = True
                decoded.close()  # stops the read-ahead thread and closes the file now, not at GC
            kind = "video"
        (h, w), st = shape[0], src.stat()
        inp = InputInfo(name=src.name, kind=kind, sha256=sha256_file(src), size=st.st_size, width=w, height=h,
                        frames=len(times), fps=fps, timestamps=[round(t, 6) for t in times])
        return Plan(veil_version=__version__, input=inp, models={"detector": self.model_info},
                    settings=self.config.model_dump(mode="json"), tracks=collector.finished())

    def render(self, src: Path | str, plan, dst: Path | str | None = None, overwrite: bool = False,
               on_frame: Callable[[int], None] | None = None) -> ItemReport:
        """Render exactly what ``plan`` says onto ``src`` (this anonymizer's filter and video
        settings); a manual track asking to be followed (``follow: true``) is followed first. Refuses a plan made for another file (sha256, size, frame count, frame size):
        PlanError, and nothing is written."""
        from .pipeline import render_plan

        src = Path(src)
        dst = Path(dst) if dst is not None else default_output(src)
        kind = media_kind(src)
        if kind == "video" and self.engine.distributed and not any(t.follow for t in plan.tracks):
            from .engine.ray_video import render_video

            return render_video(self, src, plan, dst, overwrite, on_frame)
        item = ItemReport(input=str(src), kind=kind, output=str(dst))
        with self._item(item, src, dst, overwrite):
            if not src.is_file():
                from .errors import MediaNotFoundError

                raise MediaNotFoundError(f"{src}: no such file")
            plan.check_matches(sha256_file(src), src.stat().st_size)
            if any(t.follow for t in plan.tracks):
                plan = self._follow(src, kind, plan, item)
            flt = self.pipeline.filter
            if kind == "image":
                from .io.images import read_image, write_image

                loaded = read_image(src, max_pixels=self.config.image.max_pixels)
                frame = next(iter(render_plan([loaded.rgb], plan, flt)))
                write_image(loaded, frame, dst, keep_metadata=self.config.image.keep_metadata,
                            quality=self.config.image.quality)
            else:
                from .io.video import transcode_video

                transcode_video(src, dst, lambda frames: render_plan(frames, plan, flt), self.config.video,
                                on_frame=on_frame)
            for track in plan.tracks:
                item.extra.setdefault("plan_tracks", {}).setdefault(track.decision, 0)
                item.extra["plan_tracks"][track.decision] += 1
        return item

    def _follow(self, src: Path, kind: str, plan, item: ItemReport):
        """A copy of ``plan`` whose ``follow`` tracks are followed on ``src`` with this
        anonymizer's detector (the plan's, see :meth:`for_plan`)."""
        from .io.frame_source import FrameSource
        from .plan_edits import resolve_follows

        plan = plan.model_copy(deep=True)
        frames = FrameSource(src, kind, plan.input.timestamps)
        try:
            done = resolve_follows(plan, frames.frame, self.pipeline.detector)
        finally:
            frames.close()
        item.extra["followed"] = {str(k): list(v) for k, v in done.items()}
        return plan.validated()

    @classmethod
    def for_plan(cls, plan, **overrides: Any) -> "Anonymizer":
        """An anonymizer with the plan's settings (filter, video encoding), flags overriding
        them; identity and distance stages are off (the plan already decided)."""
        from .config import IdentifyConfig, DepthConfig, validated

        cfg = validated(plan.settings) if plan.settings else get_preset("balanced")
        cfg = cfg.model_copy(update={"identify": IdentifyConfig(), "depth": DepthConfig()})
        return cls(cfg, **overrides)

    def file(self, src: Path | str, dst: Path | str | None = None, overwrite: bool = False,
             on_frame: Callable[[int], None] | None = None, on_info: Callable[[Any], None] | None = None) -> ItemReport:
        """An image or a video, by file suffix."""
        if media_kind(Path(src)) == "image":
            return self.image(src, dst, overwrite)
        return self.video(src, dst, overwrite, on_frame, on_info)

    def tree(self, src: Path | str, dst: Path | str | None = None, overwrite: bool = False,
             skip_existing: bool = False,
             on_item: Callable[[Path, ItemReport], None] | None = None,
             on_start: Callable[[Path], None] | None = None,
             on_frame: Callable[[int], None] | None = None,
             on_info: Callable[[Any], None] | None = None) -> list[ItemReport]:
        """Every image and video below ``src``, mirrored below ``dst``.

        A bad file is recorded as an error and the others are still processed; so is a
        sub-folder that cannot be read (an item of kind ``folder``). An output folder that
        cannot be made raises :class:`OutputError` (``dst`` itself: before any work) or fails
        the files that would go in it (a sub-folder). Symbolic links to folders are not
        followed; each is logged as a warning. ``on_start`` is called before each file is
        processed, ``on_info`` with each video's VideoInfo once it is open, ``on_frame`` with
        each video's frame count so far, ``on_item`` with each
        file's result (progress displays).
        """
        src = Path(src)
        dst = Path(dst) if dst is not None else default_output(src)
        if not src.is_dir():
            raise MediaNotFoundError(f"{src}: {'not a folder' if src.exists() else 'no such folder'}")
        items = []

        def unreadable(folder: Path, exc: VeilError) -> None:
            items.append(self.report.add(ItemReport(input=str(folder), kind="folder", status="error", error=str(exc))))

        media = list(walk_media(src, on_skip=lambda p, why: log.warning("%s: %s", p, why), on_error=unreadable))
        make_folder(dst)
        if self.engine.distributed:
            return items + self._tree_ray(src, dst, media, overwrite, skip_existing, on_item, on_start, on_frame)
        for path in media:
            out = dst / path.relative_to(src)
            if out.exists() and skip_existing and not overwrite:
                item = self.report.add(ItemReport(input=str(path), kind=media_kind(path), output=str(out), status="skipped"))
            else:
                item = self._tree_file(path, out, overwrite, on_start, on_frame, on_info)
            items.append(item)
            if on_item:
                on_item(path, item)
        return items

    def _tree_ray(self, src: Path, dst: Path, media: list[Path], overwrite: bool, skip_existing: bool,
                  on_item, on_start, on_frame) -> list[ItemReport]:
        """:meth:`tree` on the Ray engine: the images on an actor pool, then each video in
        segments; items in folder order, as locally."""
        from .engine.ray_folders import anonymize_images

        done: dict[Path, ItemReport] = {}
        images = []
        for path in media:
            out = dst / path.relative_to(src)
            if out.exists() and skip_existing and not overwrite:
                done[path] = self.report.add(ItemReport(input=str(path), kind=media_kind(path), output=str(out), status="skipped"))
                if on_item:
                    on_item(path, done[path])
            elif media_kind(path) == "image":
                try:
                    make_folder(out.parent)
                except OutputError as exc:
                    done[path] = self.report.add(ItemReport(input=str(path), kind="image", output=str(out),
                                                            status="error", error=str(exc)))
                    if on_item:
                        on_item(path, done[path])
                    continue
                images.append((path, out))
        for (path, _), item in zip(images, anonymize_images(self, self.engine, images, overwrite, on_start, on_item)):
            done[path] = item
        for path in media:
            if path not in done:
                done[path] = self._tree_file(path, dst / path.relative_to(src), overwrite, on_start, on_frame)
                if on_item:
                    on_item(path, done[path])
        ordered = [done[p] for p in media]
        mine = {id(it) for it in ordered}  # the report lists them in folder order too
        self.report.items = [it for it in self.report.items if id(it) not in mine] + ordered
        return ordered

    def _tree_file(self, path: Path, out: Path, overwrite: bool, on_start: Callable[[Path], None] | None,
                   on_frame: Callable[[int], None] | None, on_info: Callable[[Any], None] | None = None) -> ItemReport:
        """One file of a folder run; its error is recorded in its item, not raised."""
        try:
            make_folder(out.parent)
        except OutputError as exc:
            return self.report.add(ItemReport(input=str(path), kind=media_kind(path), output=str(out),
                                              status="error", error=str(exc)))
        if on_start:
            on_start(path)
        try:
            return self.file(path, out, overwrite, on_frame, on_info)
        except VeilError:
            return self.report.items[-1]  # image()/video() record the item before any work

    def gallery(self, create: bool = False):
        """The gallery of enrolled people this anonymizer's config points at (a
        :class:`veil.identify.Gallery`: ``enroll``, ``people``, ``rename``, ``remove``; close
        it or use it in a ``with`` block). ``create`` makes it (and its key) if missing."""
        from .identify import Gallery

        return Gallery(self.config.identify.gallery, self.config.identify.key_file, create=create)

    def close(self) -> None:
        """Disconnect from Ray (and stop the Ray instance this Anonymizer started); the local
        engine has nothing to close."""
        self.engine.close()

    def __enter__(self) -> "Anonymizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_report(self, path: Path | str | None = None) -> None:
        """Write the run report to ``path`` (default: the ``report_path`` given at creation).
        It has per-frame face records only when the Anonymizer was made with ``report_path``."""
        path = path if path is not None else self.report_path
        if path is None:
            raise ConfigError("write_report needs a path (or make the Anonymizer with report_path=...)")
        path = Path(path)
        for item in self.report.items:  # e.g. --report photo.jpg: never replace a medium with JSON
            if any(p is not None and _same_file(path, Path(p)) for p in (item.input, item.output)):
                raise OutputError(f"{path}: the report would overwrite an input or output; not written")
        self.report.timings = self.pipeline.timings.as_dict()
        self.report.write(path)

    # -- helpers -----------------------------------------------------------------------
    def _item(self, item: ItemReport, src: Path, dst: Path, overwrite: bool):
        return _ItemContext(self, item, src, dst, overwrite)


class _ItemContext:
    """Times an item, hashes input and output, records errors in the report."""

    def __init__(self, anon: Anonymizer, item: ItemReport, src: Path, dst: Path, overwrite: bool):
        self.anon, self.item, self.src, self.dst, self.overwrite = anon, item, src, dst, overwrite

    def __enter__(self) -> None:
        self.anon.report.add(self.item)
        self.t0 = time.perf_counter()
        try:
            check_output_path(self.src, self.dst)
            report = self.anon.report_path
            if report is not None and _same_file(report, self.src):
                raise OutputError(f"{report}: the report would overwrite the input")
            if report is not None and _same_file(report, self.dst):
                raise OutputError(f"{report}: the report and the output are the same file")
            if self.dst.exists() and not self.overwrite:
                raise OutputError(f"{self.dst}: output exists (use --overwrite)")
        except VeilError as exc:
            self.__exit__(type(exc), exc, None)
            raise

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        self.item.seconds = time.perf_counter() - self.t0
        if exc is not None:
            self.item.status = "error"
            self.item.error = str(exc) if isinstance(exc, VeilError) else f"{exc_type.__name__}: {exc}"
            self.item.discard_frames()
            return False
        self.item.input_sha256 = sha256_file(self.src)
        self.item.output_sha256 = sha256_file(self.dst)
        return False


def _frame_log_for(report: Path) -> FrameLog:
    """Check that the report can be written (before any work) and open its frame log."""
    if report.is_dir():
        raise OutputError(f"{report}: the report path is a folder")
    return FrameLog(report.parent)


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _stage_report(item: ItemReport, pipeline: Pipeline) -> None:
    """Each stage's counters for this item, under its name (identify: embeddings per
    face-frame; counts only, never vectors)."""
    item.extra.update(pipeline.stats())


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ConfigError(f"frames must be RGB uint8 arrays of shape (H, W, 3), got {arr.dtype} {arr.shape}")
    return arr


def _chain(first: np.ndarray | None, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``first`` (unless None: there was no frame) and then ``rest``."""
    if first is None:
        return
    yield first
    yield from rest


def _observed(frames: Iterator[np.ndarray], observers: list, expected: int | None) -> Iterator[np.ndarray]:
    for i, rgb in enumerate(frames):
        for observe in observers:
            observe(i, rgb, expected)
        yield rgb
