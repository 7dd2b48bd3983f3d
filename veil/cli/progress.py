"""Rich progress bars for the CLI (frames with fps and ETA; files in a folder run)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..io.paths import media_kind
from ..report import ItemReport

console = Console(stderr=True, soft_wrap=True)  # soft_wrap: messages stay on one line
err_console = console

__all__ = ["console", "err_console", "file_progress", "tree_progress"]


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[speed_fps]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,
    )


class _Fps:
    """Adapter so the fps column reads task.speed, which Rich computes over a window."""

    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def __call__(self, n: int) -> None:
        self.progress.update(self.task, completed=n)
        t = self.progress.tasks[self.task]
        self.progress.update(self.task, speed_fps=f"{t.speed:.1f} fps" if t.speed else "")


def _frames_total(path: Path) -> int | None:
    from ..io.video import probe_video

    try:
        return probe_video(path).frames
    except Exception:  # the real run reports the error properly
        return None


def file_progress(anon, src: Path, dst: Path | None, overwrite: bool, quiet: bool) -> ItemReport:
    """One file; raises on error (the caller prints it)."""
    if media_kind(src) == "image":
        return anon.image(src, dst, overwrite)
    with _progress(quiet) as progress:
        task = progress.add_task(src.name, total=_frames_total(src), speed_fps="")
        return anon.video(src, dst, overwrite, on_frame=_Fps(progress, task))


def tree_progress(anon, src: Path, dst: Path | None, overwrite: bool, skip_existing: bool, quiet: bool) -> list[ItemReport]:
    """A folder; bad files are reported after the bar and the others still processed."""
    from ..io.paths import walk_media

    total = sum(1 for _ in walk_media(src))
    with _progress(quiet) as progress:
        task = progress.add_task(f"{src.name}/", total=total, speed_fps="")

        def done(path: Path, item: ItemReport) -> None:
            progress.advance(task)
            if item.status == "error":
                progress.console.print(f"[red]error:[/] {item.error}")

        return anon.tree(src, dst, overwrite, skip_existing, on_item=done)
