"""``veil data ...``: checks on training data (``veil data audit``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import ConfigError
from .common import one_line_errors
from .progress import console

data_app = typer.Typer(help="Check face-detection training data.", no_args_is_help=True)

_IN = "Training set"
_VAL = "Validation set"


def _split(name, wider_gt, coco, images, labels, groups, category):
    from ..eval.audit import load_coco, load_wider

    if images is None:
        flag = "--images" if name == "train" else "--val-images"
        raise ConfigError(f"{flag} is required: the folder the {name} annotations' image paths are relative to")
    if wider_gt is not None:
        if category is not None:
            raise ConfigError("--category applies to COCO annotations only")
        return load_wider(wider_gt, images, labels, groups, name=name)
    return load_coco(coco, images, labels, groups, category, name=name)


@data_app.command("audit")
@one_line_errors
def audit(
    wider_gt: Optional[Path] = typer.Option(None, "--wider-gt", help="WIDER gt file (wider_face_train_bbx_gt.txt layout).", rich_help_panel=_IN),
    coco: Optional[Path] = typer.Option(None, "--coco", help="COCO instances JSON (bbox = x, y, w, h in pixels).", rich_help_panel=_IN),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder the image paths are relative to.", rich_help_panel=_IN),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Per-face groups: CSV image,face_index,<group columns> (optional x,y,w,h are checked).", rich_help_panel=_IN),
    group: Optional[List[str]] = typer.Option(None, "--group", help="Group column to audit (repeatable; default all).", rich_help_panel=_IN),
    category: Optional[str] = typer.Option(None, "--category", help="COCO: only annotations of this category name are faces.", rich_help_panel=_IN),
    val_wider_gt: Optional[Path] = typer.Option(None, "--val-wider-gt", help="Validation split, WIDER gt file.", rich_help_panel=_VAL),
    val_coco: Optional[Path] = typer.Option(None, "--val-coco", help="Validation split, COCO JSON.", rich_help_panel=_VAL),
    val_images: Optional[Path] = typer.Option(None, "--val-images", help="Validation images folder.", rich_help_panel=_VAL),
    val_labels: Optional[Path] = typer.Option(None, "--val-labels", help="Validation per-face groups CSV.", rich_help_panel=_VAL),
    out: Path = typer.Option(Path("audit_report"), "--out", help="Report folder (audit.json/.md/.html and figures)."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Go on without missing or unreadable images; the report says the data were partial."),
    dup_distance: int = typer.Option(4, "--dup-distance", min=0, max=64, help="Near-duplicates: dHash Hamming distance up to this many bits (of 64)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Audit a face-detection training set: counts and box shape per group, near-duplicates, train/val overlap."""
    from ..eval.audit import audit as run_audit
    from ..eval.audit_report import write_audit_report

    if (wider_gt is None) == (coco is None):
        raise ConfigError("give exactly one of --wider-gt FILE or --coco FILE (with --images DIR)")
    if val_wider_gt is not None and val_coco is not None:
        raise ConfigError("give at most one of --val-wider-gt and --val-coco")
    has_val = val_wider_gt is not None or val_coco is not None
    if not has_val and (val_images is not None or val_labels is not None):
        raise ConfigError("--val-images/--val-labels need --val-wider-gt or --val-coco")
    t0 = time.perf_counter()
    train = _split("train", wider_gt, coco, images, labels, group, category)
    val = _split("val", val_wider_gt, val_coco, val_images, val_labels, group, category) if has_val else None

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"scanning {name} images", total=total)
            bar.update(tasks[name], completed=done)

        result = run_audit(train, val, dup_distance=dup_distance, allow_partial=allow_partial, progress=progress)
    paths = write_audit_report(result, out)
    _print_summary(result, time.perf_counter() - t0)
    for kind in ("html", "md", "json"):
        console.print(f"-> {paths[kind]}", markup=False, highlight=False)


def _print_summary(result: dict, seconds: float) -> None:
    from ..eval.audit import group_summary

    tr = result["train"]
    c = tr["counts"]
    if result["partial"]:
        console.print(f"[bold yellow]PARTIAL DATA:[/] {len(tr['missing_images'])} missing, "
                      f"{len(tr['unreadable_images'])} unreadable training image(s) left out (--allow-partial)")
    console.print(f"train: {c['images']} images, {c['faces']} faces, {c['images_without_faces']} without faces "
                  f"({seconds:.1f} s)")
    rows = group_summary(result)
    if rows:
        tol = result["settings"]["aspect_tolerance"]
        t = Table(title=f"box aspect h/w per group (flag: median differs from all faces by > {100 * tol:.0f} %)")
        for col in ("group", "faces", "size px", "aspect", "vs all", "flag"):
            t.add_column(col, justify="left" if col == "group" else "right")
        for r in rows:
            flag = "–" if r["flag"] is None else ("[bold red]CHECK[/]" if r["flag"] else "ok")
            t.add_row(f"{r['column']}={r['value']}", str(r["faces"]),
                      f"{r['size_px']['median']:.0f}" if r["size_px"] else "–",
                      f"{r['aspect']['median']:.2f}" if r["aspect"] else "–",
                      f"{100 * r['aspect_vs_overall']:+.1f} %" if r["aspect_vs_overall"] is not None else "–", flag)
        console.print(t)
    nd = tr["near_duplicates"]
    console.print(f"near-duplicates (<= {nd['max_distance']} bits): {nd['pairs_count']} pair(s), "
                  f"{nd['redundant_images']} redundant image(s); identical files: {nd['identical_files']['redundant_files']}")
    if result.get("overlap"):
        o = result["overlap"]
        console.print(f"train/val overlap: {o['identical_files']['count']} identical file(s), "
                      f"{o['near_duplicates']['pairs_count']} near-duplicate pair(s), "
                      f"{o['same_file_name']['count']} same file name(s)")
