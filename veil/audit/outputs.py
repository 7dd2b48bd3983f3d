"""What an anonymizing command records about its outputs: the run's facts for the audit log
(model, settings, per-file hashes and counts) and a signed provenance manifest per output."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from ..errors import VeilError
from ..io.digest import sha256_now
from .keys import SigningKey
from .log import AuditLog, canonical
from .provenance import write_manifest
from .runs import current_run, redact_settings

__all__ = ["record_outputs", "item_facts", "watch"]

log = logging.getLogger("veil")


def item_facts(item) -> dict[str, Any]:
    """One :class:`~veil.report.ItemReport` as the audit log keeps it (no frames, no faces)."""
    d: dict[str, Any] = {"input": item.input, "kind": item.kind, "status": item.status, "counts": item.counts}
    for key in ("input_sha256", "output", "output_sha256", "error"):
        if getattr(item, key) is not None:
            d[key] = getattr(item, key)
    return d


def watch(anon):
    """Start adding up face statistics for monitoring; call before the run, pass the result to
    :func:`record_outputs`."""
    from ..monitor import FaceWatcher

    watcher = FaceWatcher(anon.config)  # also samples the input's frames as the run decodes them
    anon.report.on_item.append(watcher.attach)
    return watcher


def record_outputs(anon, items=None, provenance: bool = True, watcher=None) -> list[Path]:
    """Add ``anon``'s run to the current recorded run and sign each finished output file.

    Returns the manifests written. Outside a recorded run (the Python API) only manifests are
    written, signed with the data directory's key.
    """
    items = list(anon.report.items if items is None else items)
    for it in items:  # a live stream recorded to a file: hash the finished file
        if it.kind == "stream" and it.status == "ok" and not it.output_sha256 and it.output and Path(it.output).is_file():
            it.output_sha256 = sha256_now(Path(it.output))
    run = current_run()
    settings = redact_settings(anon.config.model_dump(mode="json"))
    if run is not None:
        totals: dict[str, int] = {}
        for it in items:
            totals[it.status] = totals.get(it.status, 0) + 1
            for k, v in it.counts.items():
                totals[k] = totals.get(k, 0) + v
        run.add(model=anon.model_info, settings=settings, anonymizes=anon.pipeline.anonymizes,
                items=[item_facts(it) for it in items], totals=totals)
    if provenance and _embed_c2pa(anon, items, run, settings) and run is not None:
        run.add(items=[item_facts(it) for it in items])  # the final bytes' hashes
    written = _sign(anon, items, run, settings) if provenance else []
    _monitor(anon, items, run, watcher)
    return written


def _finished(items):
    """The items whose output file veil finished writing."""
    return [it for it in items if it.status == "ok" and it.output_sha256 and it.output and Path(it.output).is_file()]


def _facts(anon, it, run, settings) -> dict[str, Any]:
    """What a provenance manifest (sidecar or C2PA) says about one output."""
    return {"process": {"action": "anonymize" if anon.pipeline.anonymizes else "no-op (faces left visible)",
                        "filter": anon.config.render.filter,
                        "settings_sha256": hashlib.sha256(canonical(settings)).hexdigest(), "counts": it.counts},
            "model": anon.model_info, "run_id": run.run_id if run is not None else None,
            "input": {"sha256": it.input_sha256, "kind": it.kind}}


def _key(run) -> SigningKey:
    return (run.log if run is not None else AuditLog()).signing_key()


def _embed_c2pa(anon, items, run, settings) -> bool:
    """Embed C2PA manifests where set up (see :mod:`veil.audit.c2pa_embed`); True if any was."""
    from . import c2pa_embed

    if not c2pa_embed.available():
        return False
    done = False
    for it in _finished(items):
        if c2pa_embed.embed(Path(it.output), _facts(anon, it, run, settings), _key(run)):
            it.output_sha256, done = sha256_now(Path(it.output)), True
    return done


def _sign(anon, items, run, settings) -> list[Path]:
    """A signed provenance manifest beside each finished output file."""
    key = _key(run)
    written = [write_manifest(Path(it.output), it.output_sha256, _facts(anon, it, run, settings), key)
               for it in _finished(items)]
    if run is not None:
        run.add(manifests=len(written))
    return written


def _monitor(anon, items, run, watcher) -> None:
    """Store each finished file's drift statistics (histograms only) for ``veil monitor``."""
    from ..monitor import MonitorStore, collect_item

    done = [it for it in items if it.status == "ok" and it.kind in ("image", "video")]
    if not done:
        return
    store, missing = MonitorStore(), []
    for it in done:
        try:
            faces = watcher.stats(it) if watcher is not None else None
            sample = watcher.frames(it) if watcher is not None else None
            store.add(collect_item(it, anon.config, faces, sample), run.run_id if run is not None else None,
                      it.input_sha256, it.kind)
        except (VeilError, OSError) as exc:  # the output is fine; only its statistics are missing: say so
            log.warning("no monitoring statistics for %s: %s", it.input, exc)
            missing.append(f"{it.input}: {exc}")
    if missing and run is not None:
        run.add(monitoring_missing=missing)
