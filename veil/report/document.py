"""Evaluation reports a person can read: one document, written as JSON, Markdown and HTML.

Every ``veil eval ...`` and ``veil data audit`` command builds a :class:`Document` (title,
summary, sections of text, tables and figures, plus the raw numbers) and calls
:func:`write_document`. The three files say the same thing:

- ``<stem>.json``: the numbers, for tracking a model over time (machine-readable);
- ``<stem>.md``: tables and linked figures, for a repository or a ticket;
- ``<stem>.html``: one self-contained file (figures embedded), for a data-protection officer.

Figures are PNG files the caller has already drawn (see :mod:`veil.report.plots`) in the
output folder; documents never contain embeddings.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_output

__all__ = ["Table", "Figure", "Section", "Document", "write_document", "fmt"]


def fmt(value: Any, digits: int = 3) -> str:
    """A cell as text: floats rounded, NaN/None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


@dataclass
class Table:
    """Rows of already formatted (or plain) cells under column names."""

    columns: list[str]
    rows: list[list[Any]]
    title: str = ""
    note: str = ""

    def markdown(self) -> str:
        out = [f"**{self.title}**", ""] if self.title else []
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join("---" for _ in self.columns) + "|")
        out += ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in self.rows]
        if self.note:
            out += ["", f"_{self.note}_"]
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in self.rows)
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}


@dataclass
class Figure:
    """A PNG file inside the report folder (``path`` relative to it) and its caption."""

    path: str
    caption: str = ""


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Document:
    """A whole report. ``data`` holds the raw results that go into the JSON file."""

    title: str
    summary: str = ""
    sections: list[Section] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, title: str, text: str = "", tables: list[Table] | None = None,
            figures: list[Figure] | None = None) -> Section:
        sec = Section(title, text, list(tables or []), list(figures or []))
        self.sections.append(sec)
        return sec


def _command() -> str:
    """The command line that made the report, when it came from the ``veil`` CLI."""
    if Path(sys.argv[0]).name == "veil":
        return shlex.join(["veil", *sys.argv[1:]])
    return ""


def _meta(doc: Document) -> dict[str, Any]:
    from .._version import __version__

    return {
        "command": _command(),
        "veil_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()}",
        **doc.meta,
    }


def _markdown(doc: Document, meta: dict[str, Any]) -> str:
    out = [f"# {doc.title}", ""]
    if doc.summary:
        out += [doc.summary, ""]
    for sec in doc.sections:
        out += [f"## {sec.title}", ""]
        if sec.text:
            out += [sec.text, ""]
        for t in sec.tables:
            out += [t.markdown(), ""]
        for f in sec.figures:
            out += [f"![{f.caption}]({f.path})", "", f"_{f.caption}_" if f.caption else "", ""]
    out += ["## About this report", ""]
    out += [f"- {k}: {fmt(v)}" for k, v in meta.items()]
    return "\n".join(out).rstrip() + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}caption{font-weight:bold;text-align:left}
.note{color:#555;font-size:.9em}img{max-width:100%}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}"""


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n") if p.strip())


def _html(doc: Document, meta: dict[str, Any], folder: Path) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(doc.title)}</h1>", _paragraphs(doc.summary)]
    for sec in doc.sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>{_paragraphs(sec.text)}")
        parts += [t.html() for t in sec.tables]
        for f in sec.figures:
            png = (folder / f.path).read_bytes()
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(f.caption)}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(fmt(v))}</td></tr>" for k, v in meta.items())
    parts.append(f"<h2>About this report</h2><table><tbody>{rows}</tbody></table></body></html>")
    return "".join(parts)


def _jsonable(obj: Any) -> Any:
    """numpy scalars/arrays and paths to plain JSON; NaN to null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_document(doc: Document, folder: str | Path, stem: str = "report") -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.html`` into ``folder``.

    Each file is written atomically; figures must already exist in ``folder``.
    Returns ``{"json": path, "md": path, "html": path}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = _meta(doc)
    payload = {
        "title": doc.title,
        "summary": doc.summary,
        "meta": meta,
        "data": doc.data,
        "sections": [{"title": s.title, "text": s.text, "tables": [t.as_dict() for t in s.tables],
                      "figures": [{"path": f.path, "caption": f.caption} for f in s.figures]} for s in doc.sections],
    }
    texts = {
        "json": json.dumps(_jsonable(payload), indent=1, allow_nan=False),
        "md": _markdown(doc, meta),
        "html": _html(doc, meta, folder),
    }
    paths = {}
    for ext, text in texts.items():
        dst = folder / f"{stem}.{ext}"
        with atomic_output(dst) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths[ext] = dst
    return paths
