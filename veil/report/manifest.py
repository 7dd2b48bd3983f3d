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
from typing import Any

from ..faces import Faces

__all__ = ["ItemReport", "RunReport", "NOT_HIDDEN"]

#: appended to a face's reason when the policy said anonymize but the filter does not hide
NOT_HIDDEN = "; NOT hidden: the filter does not anonymize"


@dataclass
class ItemReport:
    """One input file (or stream, or in-memory frame) of a run."""

    input: str
    kind: str  # "image" | "video"
    output: str | None = None
    status: str = "ok"  # "ok" | "error" | "skipped"
    error: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    hides: bool = True  # False when the filter leaves faces visible (none, debug): nothing counts as anonymized

    def add_frame(self, index: int, faces: Faces, time_s: float | None = None) -> None:
        rec: dict[str, Any] = {"index": index}
        if time_s is not None:
            rec["time_s"] = round(time_s, 4)
        rec["faces"] = faces.records()
        if not self.hides:
            for face in rec["faces"]:
                if face["anonymized"]:
                    face["anonymized"] = False
                    face["reason"] += NOT_HIDDEN
        self.frames.append(rec)

    @property
    def counts(self) -> dict[str, int]:
        faces = [f for fr in self.frames for f in fr["faces"]]
        return {"frames": len(self.frames), "faces": len(faces),
                "anonymized": sum(1 for f in faces if f["anonymized"])}

    def as_dict(self, per_frame: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"input": self.input, "kind": self.kind, "status": self.status}
        for key in ("error", "output", "input_sha256", "output_sha256"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        d["counts"] = self.counts
        d["seconds"] = round(self.seconds, 3)
        d.update(self.extra)
        if per_frame:
            d["frames"] = self.frames
        return d


@dataclass
class RunReport:
    settings: dict[str, Any]
    model: dict[str, Any]
    items: list[ItemReport] = field(default_factory=list)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    timings: dict[str, Any] = field(default_factory=dict)
    hides: bool = True  # the run's filter hides faces (False for none, debug); passed on to every item

    def add(self, item: ItemReport) -> ItemReport:
        item.hides = self.hides
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
        from .. import __version__

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
            },
            "items": [it.as_dict() for it in self.items],
        }

    def write(self, path: Path) -> None:
        """Write the report as JSON, atomically."""
        from ..io.atomic import atomic_output

        path = Path(path)
        with atomic_output(path, ".json") as tmp:
            tmp.write_text(json.dumps(self.as_dict(), indent=1), encoding="utf-8")
