"""The training-set audit as a readable report: :class:`~veil.report.document.Document` and figures.

Kept apart from :mod:`veil.eval.audit`, which only computes: this module turns its result
dict into tables, text that states each rule, and PNG figures (matplotlib, via
:mod:`veil.report.plots`), and writes ``audit.json/.md/.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..report.document import Document, Figure, Table, fmt, write_document
from ..report.plots import pyplot
from .audit import UNLABELLED

__all__ = ["build_document", "write_audit_report"]

#: Rows of pair listings shown in the report (the JSON keeps the full capped listing).
_SHOW = 20


def _pct_text(p: Mapping[str, float] | None, digits: int = 2, scale: float = 1.0) -> str:
    if not p:
        return "–"
    return f"{p['median'] * scale:.{digits}f} [{p['p10'] * scale:.{digits}f}–{p['p90'] * scale:.{digits}f}]"


def _signed_pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:+.1f} %"


def _flag_text(st: Mapping[str, Any], min_faces: int) -> str:
    if st["flag"] is None:
        return f"too few (< {min_faces})" if st["faces"] else "–"
    return "CHECK" if st["flag"] else "ok"


def _splits(result: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(n, result[n]) for n in ("train", "val") if result.get(n)]


# -- figures ---------------------------------------------------------------------------
def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def _group_figure(split: Mapping[str, Any], col: str, tol: float, path: Path) -> Path:
    """Three panels per group column: faces, box size (px), aspect ratio h/w with the ±tol band."""
    plt = pyplot()
    stats = split["boxes"]["groups"][col]
    counts = split["counts"]["groups"][col]
    values = list(stats)
    overall = split["boxes"]["overall"]["aspect"]
    fig, axes = plt.subplots(1, 3, figsize=(max(9.0, 1.1 * len(values) * 1.5 + 3), 3.8))
    x = np.arange(len(values))

    def whiskers(key):
        med = np.array([stats[v][key]["median"] if stats[v][key] else np.nan for v in values])
        lo = np.array([stats[v][key]["p10"] if stats[v][key] else np.nan for v in values])
        hi = np.array([stats[v][key]["p90"] if stats[v][key] else np.nan for v in values])
        return med, np.vstack([np.clip(med - lo, 0, None), np.clip(hi - med, 0, None)])

    colors = ["#999999" if v == UNLABELLED else "#4c72b0" for v in values]
    axes[0].bar(x, [counts[v]["faces"] for v in values], color=colors)
    axes[0].set(title="faces", ylabel="count")
    med, err = whiskers("size_px")
    axes[1].errorbar(x, med, yerr=err, fmt="o", capsize=3, color="#4c72b0")
    axes[1].set(title="box size sqrt(w·h), px", yscale="log")
    med, err = whiskers("aspect")
    flagged = [bool(stats[v]["flag"]) for v in values]
    axes[2].errorbar(x, med, yerr=err, fmt="none", capsize=3, ecolor="#888888")
    axes[2].scatter(x, med, c=["#c44e52" if f else "#4c72b0" for f in flagged], zorder=3)
    if overall:
        ref = overall["median"]
        axes[2].axhline(ref, color="k", lw=0.8, label="median, all faces")
        axes[2].axhspan(ref * (1 - tol), ref * (1 + tol), color="k", alpha=0.08, label=f"±{100 * tol:.0f} %")
        axes[2].legend(fontsize=7, loc="upper right")
    axes[2].set(title="aspect ratio h/w (median, p10–p90)")
    for ax in axes:
        ax.set_xticks(x, values, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(col, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _hist_figure(split: Mapping[str, Any], col: str, path: Path) -> Path:
    """Aspect-ratio and box-size distributions (share of each group's boxes), one line per value."""
    plt = pyplot()
    edges = split["boxes"]["edges"]
    stats = split["boxes"]["groups"][col]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, ax, xlabel in (("aspect", axes[0], "aspect ratio h/w"), ("size_px", axes[1], "box size sqrt(w·h), px")):
        e = np.asarray(edges[key])
        overall = np.asarray(split["boxes"]["overall"]["hist"][key], float)
        if overall.sum():
            ax.stairs(overall / overall.sum(), e, color="k", lw=1.6, label="all faces")
        for v, st in stats.items():
            h = np.asarray(st["hist"][key], float)
            if h.sum() == 0:
                continue
            ax.stairs(h / h.sum(), e, lw=1.0, ls=":" if v == UNLABELLED else "-", label=f"{v} (n={st['faces']})")
        if key == "size_px":
            ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel="share of boxes")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{col}: box shape and size per group", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# -- document --------------------------------------------------------------------------
def _summary(result: Mapping[str, Any]) -> str:
    tr = result["train"]
    c = tr["counts"]
    s = result["settings"]
    lines = [f"Training set: {c['images']} images, {c['faces']} faces, {c['images_without_faces']} images without a face."]
    if result["partial"]:
        lines.append("PARTIAL DATA: some images were missing or unreadable and the audit was run on the rest "
                     "(--allow-partial); every number below covers the readable images only.")
    flagged = [f"{col}={v} ({_signed_pct(st['aspect_vs_overall'])})"
               for col, vals in tr["boxes"]["groups"].items() for v, st in vals.items() if st["flag"]]
    # a group too small to judge is named, with its difference: "no group differs" must not hide it
    unjudged = [f"{col}={v} ({st['faces']} faces, {_signed_pct(st['aspect_vs_overall'])})"
                for col, vals in tr["boxes"]["groups"].items() for v, st in vals.items()
                if st["flag"] is None and st["faces"] and st.get("aspect_vs_overall") is not None]
    if flagged:
        lines.append(f"Box convention check: {len(flagged)} group(s) whose median aspect ratio differs from all faces by "
                     f"more than {100 * s['aspect_tolerance']:.0f} %: {', '.join(flagged)}.")
    elif tr["boxes"]["groups"]:
        lines.append(f"Box convention check: no {'judged ' if unjudged else ''}group's median aspect ratio differs "
                     f"from all faces by more than {100 * s['aspect_tolerance']:.0f} %.")
    if unjudged:
        lines.append(f"Not judged (fewer than {s['min_group_faces']} faces): {', '.join(unjudged)}.")
    nd = tr["near_duplicates"]
    lines.append(f"Near-duplicate images (dHash distance <= {nd['max_distance']}): {nd['pairs_count']} pair(s) in "
                 f"{nd['clusters']} cluster(s); {nd['identical_files']['redundant_files']} byte-identical extra cop(ies).")
    if result.get("overlap"):
        o = result["overlap"]
        lines.append(f"Train/validation overlap: {o['identical_files']['count']} identical file(s), "
                     f"{o['near_duplicates']['pairs_count']} near-duplicate pair(s), "
                     f"{o['same_file_name']['count']} shared file name(s).")
    return "\n\n".join(lines)


def _inputs_section(doc: Document, result: Mapping[str, Any]) -> None:
    rows = []
    for name, r in _splits(result):
        c = r["counts"]
        rows.append([name, r["format"], r["annotations"], r["images_dir"], r["labels"] or "–", c["images_listed"],
                     c["images"], len(r["missing_images"]), len(r["unreadable_images"]),
                     result["unannotated_files"].get(name, {}).get("count", 0)])
    text = ("Every image the annotations list was opened, hashed (sha256 of the file, dHash of the pixels) and "
            "measured (width and height of the stored pixel grid, which the boxes refer to).")
    if result["partial"]:
        text += ("\n\nPARTIAL DATA: the audit was asked to go on without the missing or unreadable images "
                 "(--allow-partial). Their faces are left out of every count and statistic below.")
    tables = [Table(["split", "format", "annotations", "images folder", "labels", "images listed", "images read",
                     "missing", "unreadable", "image files not annotated"], rows, title="Inputs")]
    for name, r in _splits(result):
        bad = [[m, "missing"] for m in r["missing_images"][:_SHOW]]
        bad += [[u["image"], u["reason"]] for u in r["unreadable_images"][:_SHOW]]
        if bad:
            n = len(r["missing_images"]) + len(r["unreadable_images"])
            tables.append(Table(["image", "problem"], bad, title=f"{name}: images left out",
                                note=f"{n} in all; the JSON lists up to {result['settings']['list_cap']} of each kind."))
        un = result["unannotated_files"].get(name, {})
        if un.get("count"):
            tables.append(Table(["file"], [[f] for f in un["examples"][:_SHOW]], title=f"{name}: image files no split annotates",
                                note=f"{un['count']} in all: images without annotations, or annotations forgotten."))
        if r.get("declared_size_mismatch"):
            tables.append(Table(["image", "declared w×h", "file w×h"],
                                [[m["image"], "×".join(fmt(v, 0) for v in m["declared"]), "×".join(fmt(v, 0) for v in m["file"])]
                                 for m in r["declared_size_mismatch"][:_SHOW]],
                                title=f"{name}: width/height in the annotations differ from the image file"))
    doc.add("Inputs and completeness", text, tables)


def _counts_section(doc: Document, result: Mapping[str, Any]) -> None:
    rows = []
    for name, r in _splits(result):
        c = r["counts"]
        rows.append([name, c["images"], c["faces"], f"{c['faces'] / c['images']:.2f}" if c["images"] else "–",
                     c["images_without_faces"], c["degenerate_boxes"], c["boxes_outside_image"]])
    tables = [Table(["split", "images", "faces", "faces per image", "images without faces", "zero-size boxes",
                     "boxes outside the image"], rows, title="Totals",
                    note="Zero-size boxes are counted but left out of the size and aspect statistics.")]
    for name, r in _splits(result):
        for col, vals in r["counts"]["groups"].items():
            total = sum(v["faces"] for v in vals.values())
            labelled = total - vals.get(UNLABELLED, {"faces": 0})["faces"]
            rows = [[v, d["faces"], f"{100 * d['faces'] / total:.1f} %" if total else "–",
                     f"{100 * d['faces'] / labelled:.1f} %" if labelled and v != UNLABELLED else "–", d["images"]]
                    for v, d in vals.items()]
            tables.append(Table([col, "faces", "share of faces", "share of labelled faces", "images with such a face"],
                                rows, title=f"{name}: faces per {col}"))
    doc.add("Counts", "Faces per value of each group column; 'unlabelled' counts faces the labels do not cover.", tables)


def _boxes_section(doc: Document, result: Mapping[str, Any], folder: Path) -> None:
    s = result["settings"]
    tol, nmin = s["aspect_tolerance"], s["min_group_faces"]
    text = (f"Box size is sqrt(w·h), in pixels and relative to the image (sqrt(w·h / (W·H))); aspect ratio is h/w. "
            f"Each cell gives the median and, in brackets, the 10th and 90th percentile.\n\n"
            f"Rule: a group is flagged CHECK when its median aspect ratio differs from the median of all faces of the "
            f"split by more than {100 * tol:.0f} % (groups with fewer than {nmin} boxes are not judged). A group boxed "
            f"with another convention (whole head instead of face only, say) shows up this way; adding such faces to a "
            f"training set teaches a second box convention rather than helping the group. A difference can also come "
            f"from pose or from a different mix of face sizes: look at examples before relabelling.")
    tables, figures = [], []
    for name, r in _splits(result):
        ov = r["boxes"]["overall"]
        rows = [["all faces", ov["faces"], _pct_text(ov["size_px"], 1), _pct_text(ov["size_rel"], 2, 100),
                 _pct_text(ov["aspect"]), "–", "–"]]
        for col, vals in r["boxes"]["groups"].items():
            for v, st in vals.items():
                rows.append([f"{col} = {v}", st["faces"], _pct_text(st["size_px"], 1), _pct_text(st["size_rel"], 2, 100),
                             _pct_text(st["aspect"]), _signed_pct(st["aspect_vs_overall"]), _flag_text(st, nmin)])
        tables.append(Table(["group", "boxes", "size px", "size % of image", "aspect h/w", "aspect vs all", "convention"],
                            rows, title=f"{name}: box size and aspect ratio"))
        for col in r["boxes"]["groups"]:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in col)
            p = _group_figure(r, col, tol, folder / f"{name}_groups_{safe}.png")
            figures.append(Figure(p.name, f"{name}, {col}: faces, box size and aspect ratio per group "
                                          f"(red: flagged; band: ±{100 * tol:.0f} % around the median of all faces)"))
            p = _hist_figure(r, col, folder / f"{name}_hist_{safe}.png")
            figures.append(Figure(p.name, f"{name}, {col}: distribution of aspect ratio and box size per group"))
    doc.add("Box size and aspect ratio per group", text, tables, figures)


def _dups_section(doc: Document, result: Mapping[str, Any]) -> None:
    s = result["settings"]
    text = (f"Near-duplicates are found with a 64-bit difference hash (dHash): the grayscale image is resized to 9×8 "
            f"pixels and each bit says whether a pixel is brighter than its left neighbour. Two images whose hashes "
            f"differ in at most {s['dup_distance']} bits are near-duplicates (re-encoded, resized or lightly edited "
            f"copies, or burst shots); byte-identical files are found by sha256. Clusters join pairs that share an "
            f"image; 'redundant' is images minus clusters, i.e. how many could go without losing a scene. At larger "
            f"distances, unrelated photos on plain backgrounds (product shots) start to match.")
    tables = []
    for name, r in _splits(result):
        nd = r["near_duplicates"]
        tables.append(Table(["pairs", "clusters", "images in clusters", "redundant images", "identical-file groups",
                             "identical extra copies"],
                            [[nd["pairs_count"], nd["clusters"], nd["images_in_clusters"], nd["redundant_images"],
                              nd["identical_files"]["groups"], nd["identical_files"]["redundant_files"]]],
                            title=f"{name}: near-duplicate images"))
        if nd["pairs"]:
            tables.append(Table(["image A", "image B", "bits apart", "identical file"],
                                [[p["a"], p["b"], p["distance"], "yes" if p["identical"] else "no"] for p in nd["pairs"][:_SHOW]],
                                title=f"{name}: closest pairs",
                                note=f"{nd['pairs_count']} pair(s) in all; the JSON lists up to {s['list_cap']}."))
    doc.add("Near-duplicate images", text, tables)


def _overlap_section(doc: Document, result: Mapping[str, Any]) -> None:
    o = result["overlap"]
    if not o:
        return
    nd = o["near_duplicates"]
    text = ("Images of the validation split that are also in the training split make validation numbers "
            "optimistic. Checked: identical files (sha256), near-duplicates (same dHash rule as above) and "
            "identical file names (which may or may not be the same photo).")
    tables = [Table(["identical files", "near-duplicate pairs", "training images involved", "same file name"],
                    [[o["identical_files"]["count"], nd["pairs_count"], nd["train_images_involved"],
                      o["same_file_name"]["count"]]], title="Train/validation overlap")]
    if nd["pairs"]:
        tables.append(Table(["train", "val", "bits apart", "identical file"],
                            [[p["train"], p["val"], p["distance"], "yes" if p["identical"] else "no"] for p in nd["pairs"][:_SHOW]],
                            title="Near-duplicates across splits",
                            note=f"{nd['pairs_count']} pair(s) in all."))
    if o["same_file_name"]["examples"]:
        tables.append(Table(["train", "val"], [[e["train"], e["val"]] for e in o["same_file_name"]["examples"][:_SHOW]],
                            title="Same file name in both splits", note=f"{o['same_file_name']['count']} in all."))
    doc.add("Train/validation overlap", text, tables)


def build_document(result: Mapping[str, Any], folder: str | Path) -> Document:
    """The report of :func:`veil.eval.audit.audit`'s result; figures are drawn into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    title = "Training-set audit" + (" (PARTIAL DATA)" if result["partial"] else "")
    doc = Document(title, _summary(result), data=dict(result),
                   meta={"command": "veil data audit", "partial_data": result["partial"]})
    _inputs_section(doc, result)
    _counts_section(doc, result)
    _boxes_section(doc, result, folder)
    _dups_section(doc, result)
    _overlap_section(doc, result)
    return doc


def write_audit_report(result: Mapping[str, Any], folder: str | Path, stem: str = "audit") -> dict[str, Path]:
    """Draw the figures and write ``<stem>.json/.md/.html`` into ``folder``; returns their paths."""
    return write_document(build_document(result, folder), folder, stem)
