"""The run report (``--report out.json``).

A data-protection officer should be able to answer from it: which files were processed,
with which model (name and sha256) and settings, which faces were found where, and whether
each was anonymized and why. Inputs and outputs are identified by sha256 so that the report
can later prove which output came from which input. It never contains pixels, crops or
embeddings: only geometry, scores and decisions.

"anonymized" means *hidden in the output*: with a filter that does not anonymize (``none``,
``debug``) no face is counted as anonymized, whatever the policy decided, and each face's
reason says it was left visible (:attr:`ItemReport.hides`).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..faces import Faces
from .frame_log import FrameLog

__all__ = ["ItemReport", "RunReport", "NOT_HIDDEN"]

#: appended to a face's reason when the policy said anonymize but the filter does not hide
NOT_HIDDEN = "; NOT hidden: the filter does not anonymize"


@dataclass
class ItemReport:
    """One input file (or stream, or in-memory frame) of a run.

    Only counters stay in memory. The per-frame records (boxes, scores, decisions) go to the
    run's :class:`~veil.report.frame_log.FrameLog` when a report was asked for, and nowhere
    otherwise: they would grow with the length of a video.
    """

    input: str
    kind: str  # "image" | "video" | "stream"
    output: str | None = None
    status: str = "ok"  # "ok" | "error" | "skipped"
    error: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    hides: bool = True  # False when the filter leaves faces visible (none, debug): nothing counts as anonymized
    n_frames: int = 0
    n_faces: int = 0
    n_anonymized: int = 0
    _log: FrameLog | None = field(default=None, repr=False, compare=False)
    _span: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)
    #: called with each frame's faces (e.g. monitoring histograms, constant memory)
    observers: list[Callable[[Faces], None]] = field(default_factory=list, repr=False, compare=False)
    #: called with each input frame of a video as the run reads it: (index, RGB, the frame
    #: count expected): statistics of the input without decoding it a second time
    input_observers: list[Callable[[int, np.ndarray, int | None], None]] = field(default_factory=list, repr=False,
                                                                                compare=False)

    def attach(self, log: FrameLog | None) -> None:
        """Record this item's frames in ``log`` (items are recorded one after another)."""
        self._log = log
        if log is not None:
            self._span = (log.tell(), log.tell())

    def add_frame(self, index: int, faces: Faces, time_s: float | None = None) -> None:
        for observe in self.observers:
            observe(faces)
        self.n_frames += 1
        self.n_faces += len(faces)
        if self.hides:
            self.n_anonymized += int(np.count_nonzero(faces.to_anonymize))
        if self._log is None:
            return
        start, end = self._span
        if end != self._log.tell():
            raise RuntimeError("the frames of two report items were interleaved")
        rec: dict[str, Any] = {"index": index}
        if time_s is not None:
            rec["time_s"] = round(time_s, 4)
        rec["faces"] = faces.records()
        if not self.hides:
            for face in rec["faces"]:
                if face["anonymized"]:
                    face["anonymized"] = False
                    face["reason"] += NOT_HIDDEN
        self._log.append(rec)
        self._span = (start, self._log.tell())

    def discard_frames(self) -> None:
        """Forget the frames (the item failed: they describe no output)."""
        self.n_frames = self.n_faces = self.n_anonymized = 0
        start, end = self._span
        if self._log is not None and end == self._log.tell():
            self._log.truncate(start)
        self._span = (start, start)

    def frame_records(self) -> Iterator[bytes]:
        """The per-frame records as JSON documents, read back from the frame log."""
        if self._log is not None:
            yield from self._log.read(*self._span)

    @property
    def counts(self) -> dict[str, int]:
        return {"frames": self.n_frames, "faces": self.n_faces, "anonymized": self.n_anonymized}

    def as_dict(self) -> dict[str, Any]:
        """Everything but the per-frame records (see :meth:`frame_records`)."""
        d: dict[str, Any] = {"input": self.input, "kind": self.kind, "status": self.status}
        for key in ("error", "output", "input_sha256", "output_sha256"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        d["counts"] = self.counts
        d["seconds"] = round(self.seconds, 3)
        d.update(self.extra)
        return d


@dataclass
class RunReport:
    """The manifest and the items of a run. ``frames``: where per-frame records go (None:
    nowhere, the report then has counts only)."""

    settings: dict[str, Any]
    model: dict[str, Any]
    items: list[ItemReport] = field(default_factory=list)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    timings: dict[str, Any] = field(default_factory=dict)
    frames: FrameLog | None = None
    hides: bool = True  # the run's filter hides faces (False for none, debug); passed on to every item
    #: called with each item as it is added (to attach per-frame observers)
    on_item: list[Callable[[ItemReport], None]] = field(default_factory=list, repr=False)

    def add(self, item: ItemReport) -> ItemReport:
        item.hides = self.hides
        for hook in self.on_item:
            hook(item)
        item.attach(self.frames)
        self.items.append(item)
        return item

    @property
    def totals(self) -> dict[str, int]:
        t = {"items": len(self.items), "ok": 0, "error": 0, "skipped": 0, "frames": 0, "faces": 0, "anonymized": 0}
        for it in self.items:
            t[it.status] = t.get(it.status, 0) + 1
            for k, v in it.counts.items():
                t[k] += v
        return t

    def as_dict(self) -> dict[str, Any]:
        """The report without per-frame records."""
        from .._version import __version__

        return {
            "manifest": {
                "tool": "veil",
                "veil_version": __version__,
                "started": self.started,
                "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "platform": platform.platform(terse=True),
                "model": self.model,
                "settings": self.settings,
                "faces_hidden": self.hides,
                "totals": self.totals,
                "timings": self.timings,
                "per_frame": self.frames is not None,
            },
            "items": [it.as_dict() for it in self.items],
        }

    def write(self, path: Path) -> None:
        """Write the report as JSON, atomically, streaming the per-frame records from the
        frame log (each item gets a ``frames`` list) so that memory stays flat."""
        from ..io.atomic import atomic_output

        path = Path(path)
        doc = self.as_dict()
        with atomic_output(path, ".json") as tmp, open(tmp, "wb") as fh:
            fh.write(b'{"manifest": ' + _dump(doc["manifest"]) + b',\n"items": [')
            for k, (item, d) in enumerate(zip(self.items, doc["items"])):
                fh.write(b"\n" if k == 0 else b",\n")
                if self.frames is None:
                    fh.write(_dump(d))
                    continue
                fh.write(_dump(d)[:-1].rstrip() + b',\n "frames": [')
                for n, rec in enumerate(item.frame_records()):
                    fh.write((b"\n  " if n == 0 else b",\n  ") + rec)
                fh.write(b"]}")
            fh.write(b"\n]}\n")


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, indent=1).encode("utf-8")
