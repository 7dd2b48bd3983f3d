"""Image folders on Ray Data: the files of a folder run spread over an actor pool.

The driver lists the folder (as the local path does: same order, same skips, same mirrored
output paths) and hands Ray Data only the pairs of paths. Each actor builds its
:class:`~veil.Anonymizer` -- the ONNX session -- once, with as many onnxruntime threads as
the CPUs Ray reserves for it, then reads, anonymizes and writes one image at a time where it
runs: the input and output folders must be on a file system every worker sees (one machine,
NFS, a shared volume). Writes are atomic (:mod:`veil.io.atomic`), so an actor killed mid-file
leaves no output for that file, only a hidden ``.part`` file that the next veil writer in
that folder removes (and the driver sweeps the output folders at the end).

What comes back to the driver is small: the item's status, hashes, counts and the faces of
its one frame (boxes and decisions, never pixels), added to the run's one report in folder
order. A bad file is an error item and the rest go on, as locally. A file whose actor died
twice (Ray restarts actors and retries the file once) is an error item saying so.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, VeilError
from ..report import ItemReport

__all__ = ["anonymize_images", "ImageWorker", "TASK_RETRIES"]

log = logging.getLogger("veil")

#: times Ray Data reruns one file whose actor died (then the file is an error)
TASK_RETRIES = 1


class ImageWorker:
    """A Ray Data actor: one Anonymizer (one ONNX session) for all the files it is given."""

    def __init__(self, make, config_json: str, overwrite: bool, cancel_path: str):
        """``make``: the :class:`~veil.Anonymizer` class the driver runs (given, not imported:
        the engine sits below the API that dispatches to it). ``cancel_path``: a file the
        driver creates when the job is cancelled; no file is started once it exists."""
        from ..config import Config

        self.anon = make(Config.model_validate_json(config_json))
        self.overwrite = overwrite
        self.cancel_path = Path(cancel_path)
        self.faces: list = []
        self.anon.report.on_item.append(lambda item: item.observers.append(self.faces.append))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = []
        for index, src, dst in zip(batch["index"], batch["src"], batch["dst"]):
            out.append(pickle.dumps(self._one(int(index), Path(src), Path(dst))))
        return {"index": batch["index"], "result": out}

    def _one(self, index: int, src: Path, dst: Path) -> dict[str, Any]:
        self.faces.clear()
        if self.cancel_path.exists():  # the job was cancelled: start nothing more (Ray may still feed this actor)
            return {"index": index, "status": "error", "error": "cancelled", "seconds": 0.0, "extra": {}, "faces": [],
                    "worker": worker_identity()}
        try:
            self.anon.image(src, dst, self.overwrite)
        except VeilError:
            pass  # recorded in the item
        except Exception:  # noqa: BLE001 -- recorded in the item by image(), as locally
            log.debug("%s failed", src, exc_info=True)
        item = self.anon.report.items.pop()
        return {"index": index, "status": item.status, "error": item.error, "seconds": item.seconds,
                "input_sha256": item.input_sha256, "output_sha256": item.output_sha256, "extra": item.extra,
                "faces": list(self.faces) if item.status == "ok" else [],
                "worker": worker_identity()}


def worker_identity() -> dict[str, Any]:
    """Which machine and process did the work (the report, and through it the audit log, say
    it for each file): host name, Ray node id, pid."""
    import socket

    import ray

    return {"host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()[:16], "pid": os.getpid()}


def anonymize_images(anon, engine, pairs: list[tuple[Path, Path]], overwrite: bool,
                     on_start: Callable[[Path], None] | None = None,
                     on_item: Callable[[Path, ItemReport], None] | None = None) -> list[ItemReport]:
    """Anonymize each ``(src, dst)`` image on ``engine``'s Ray cluster with ``anon``'s settings;
    the items are added to ``anon.report`` (in ``pairs`` order) and returned."""
    import ray
    from ray.data import DataContext

    if not pairs:
        return []
    ident = anon.config.identify
    if ident.spare or ident.only or ident.spare_enrolled:
        raise ConfigError("--spare/--only/--spare-enrolled with --engine ray: not supported yet (every worker would "
                          "need the gallery and its key); use --engine local")
    engine.cluster()
    workers = min(engine.worker_count(), len(pairs))
    config = anon.config.updated(detect={"threads": engine.threads})
    rows = [{"index": i, "src": str(s), "dst": str(d)} for i, (s, d) in enumerate(pairs)]
    ctx = DataContext.get_current()
    saved = ctx.max_errored_blocks, ctx.enable_progress_bars
    ctx.max_errored_blocks, ctx.enable_progress_bars = len(rows), False  # a lost file is an error item, not the end
    data_log = logging.getLogger("ray.data")
    saved_level = data_log.level
    data_log.setLevel(logging.ERROR)  # veil shows one progress display; Ray Data's plan and timing lines are noise here
    results: dict[int, dict[str, Any]] = {}
    folders = {d.parent for _, d in pairs}
    # workers share the file system with the driver (docs/deploy.md): a marker there is the one
    # signal every actor sees, including those Ray keeps feeding until the pool is torn down
    cancel = Path(os.path.commonpath([str(f) for f in folders])) / f".veil-cancel-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ImageWorker, fn_constructor_kwargs={"make": type(anon), "config_json": config.model_dump_json(),
                                               "overwrite": overwrite, "cancel_path": str(cancel)},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=engine.threads,
            max_restarts=-1, max_task_retries=TASK_RETRIES)
        for row in ds.iter_rows():  # as files finish, on any worker: one progress display
            res = pickle.loads(row["result"])
            results[res["index"]] = res
            src, dst = pairs[res["index"]]
            if on_start is not None:
                on_start(src)
            if on_item is not None:
                on_item(src, _as_item(src, dst, res, hides=anon.report.hides))
    except BaseException:  # Ctrl-C: no actor starts another file; wait for those being written to finish or go
        try:
            try:
                cancel.touch()
            except OSError:  # the output folder is not there yet: then no actor is writing into it either
                log.debug("cannot create %s", cancel, exc_info=True)
            _sweep(folders, wait_s=60.0)
        finally:
            cancel.unlink(missing_ok=True)
        raise
    finally:
        ctx.max_errored_blocks, ctx.enable_progress_bars = saved
        data_log.setLevel(saved_level)
    _sweep(folders)
    items = []
    for i, (src, dst) in enumerate(pairs):
        item = anon.report.add(ItemReport(input=str(src), kind="image", output=str(dst)))
        res = results.get(i) or {"status": "error", "faces": [], "extra": {},
                                 "error": f"{src}: its Ray worker died {TASK_RETRIES + 1} times; nothing written"}
        _fill(item, res)
        items.append(item)
    return items


def _as_item(src: Path, dst: Path, res: dict[str, Any], hides: bool) -> ItemReport:
    """A detached item for progress displays (the report's own items are made at the end)."""
    item = ItemReport(input=str(src), kind="image", output=str(dst), hides=hides)
    _fill(item, res)
    return item


def _fill(item: ItemReport, res: dict[str, Any]) -> None:
    for faces in res["faces"]:
        item.add_frame(0, faces)
    item.status, item.error = res["status"], res.get("error")
    item.seconds = res.get("seconds", 0.0)
    item.input_sha256, item.output_sha256 = res.get("input_sha256"), res.get("output_sha256")
    item.extra.update(res.get("extra") or {})
    if "worker" in res:
        item.extra["worker"] = res["worker"]


def _sweep(folders: set[Path], wait_s: float = 0.0) -> None:
    """Remove the ``.part`` files of actors that were killed mid-write (see veil.io.atomic);
    with ``wait_s``, keep trying that long while some are still held by a dying writer."""
    from ..io.atomic import _PART_RE, remove_stale_parts

    deadline = time.monotonic() + wait_s
    while True:
        for folder in folders:
            remove_stale_parts(folder)
        left = [p for f in folders for p in f.glob(".*.part*") if _PART_RE.fullmatch(p.name)]
        if not left or time.monotonic() >= deadline:
            return
        time.sleep(0.2)
