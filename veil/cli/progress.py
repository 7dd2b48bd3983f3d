"""Progress for the CLI: one display for a whole run of one or many files.

On a terminal, Rich bars: the files done (when there are several) labelled with the current
file, and the current video's frames with fps and ETA. Without a terminal (a pipe, a log file,
a service), the same news goes to the ``veil.progress`` logger instead: a line every few
seconds during a video and one per finished file, so a long batch job is not silent.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..io.paths import media_kind
from ..report import ItemReport
from .safe_text import markup_safe

console = Console(stderr=True, soft_wrap=True)  # soft_wrap: messages stay on one line
err_console = console
log = logging.getLogger("veil.progress")

__all__ = ["console", "err_console", "RunProgress", "file_progress", "LOG_EVERY_S"]

#: seconds between two progress lines in the log (no terminal)
LOG_EVERY_S = 5.0


def _progress(quiet: bool) -> Progress:
    """The Rich bar layout shared by the commands (description, bar, M/N, fps, times)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[speed_fps]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,
    )


class RunProgress:
    """Progress of a run over ``files`` media files (a context manager).

    Call :meth:`start` before each file, pass :meth:`info` as the video's ``on_info`` (the
    frame count comes from the run's own open of the file, not a second one) and
    :meth:`frame` as its ``on_frame``, and :meth:`done` after each file. ``quiet`` shows
    nothing at all.
    """

    def __init__(self, files: int, quiet: bool = False, terminal: bool | None = None):
        self.files, self.quiet = files, quiet
        self.terminal = console.is_terminal if terminal is None else terminal
        self.n_done = 0
        self.current: Path | None = None
        self.bar: Progress | None = None
        self._files_task: TaskID | None = None
        self._frames_task: TaskID | None = None
        self._frames_total: int | None = None
        self._t0 = self._last_log = 0.0

    def __enter__(self) -> RunProgress:
        if self.quiet:
            return self
        if self.terminal:
            self.bar = _progress(quiet=False)
            self.bar.__enter__()
            if self.files > 1:
                self._files_task = self.bar.add_task("files", total=self.files, speed_fps="")
        else:
            log.setLevel(logging.INFO)  # the CLI's handler shows veil's warnings only; progress is asked for
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def print(self, text: str) -> None:
        """A message that does not break the bars (errors of single files in a folder run)."""
        (self.bar.console if self.bar is not None else console).print(text)

    def start(self, path: Path) -> None:
        self.current = Path(path)
        self._t0 = self._last_log = time.monotonic()
        video = media_kind(self.current) == "video"
        self._frames_total = None
        if self.quiet:
            return
        if self.bar is not None:
            if self._files_task is not None:
                self.bar.update(self._files_task, description=f"file {self.n_done + 1}/{self.files}: {markup_safe(self.current.name)}")
            if self._frames_task is not None:
                self.bar.remove_task(self._frames_task)
                self._frames_task = None
            if video:
                self._frames_task = self.bar.add_task(markup_safe(self.current.name), total=None, speed_fps="")

    def info(self, info) -> None:
        """``on_info`` for a video: its VideoInfo, once the run opened it (the frame count)."""
        self._frames_total = info.frames
        if self.quiet:
            return
        if self.bar is not None and self._frames_task is not None:
            self.bar.update(self._frames_task, total=info.frames)
        elif self.bar is None and self.current is not None:
            log.info("%s%s: started (%s frames)", self._prefix(), self.current.name, self._frames_total or "?")

    def frame(self, n: int) -> None:
        """``on_frame`` for a video: ``n`` frames written so far."""
        if self.quiet:
            return
        if self.bar is not None and self._frames_task is not None:
            self.bar.update(self._frames_task, completed=n)
            t = self.bar.tasks[self._frames_task]
            self.bar.update(self._frames_task, speed_fps=f"{t.speed:.1f} fps" if t.speed else "")
        elif self.bar is None:
            now = time.monotonic()
            if now - self._last_log >= LOG_EVERY_S:
                self._last_log = now
                fps = n / (now - self._t0) if now > self._t0 else 0.0
                total = f"/{self._frames_total}" if self._frames_total else ""
                log.info("%s%s: %d%s frames, %.1f fps", self._prefix(), self.current.name if self.current else "", n, total, fps)

    def done(self, path: Path, item: ItemReport) -> None:
        self.n_done += 1
        if self.quiet:
            return
        if self.bar is not None:
            if self._files_task is not None:
                self.bar.advance(self._files_task)
            if item.status == "error":
                self.print(f"[red]error:[/] {markup_safe(item.error)}")
            return
        n = item.counts["frames"]
        what = {"ok": f"done, {n} frame(s), {item.counts['anonymized']} face(s) hidden", "skipped": "skipped (output exists)",
                "error": f"error: {item.error}"}.get(item.status, item.status)
        log.info("[%d/%d] %s: %s in %.1f s", self.n_done, self.files, Path(path).name, what, item.seconds)

    def _prefix(self) -> str:
        return f"[{self.n_done + 1}/{self.files}] " if self.files > 1 else ""


def file_progress(anon, src: Path, dst: Path | None, overwrite: bool, progress: RunProgress) -> ItemReport:
    """One file; raises on error (the caller decides: print and exit, or go on)."""
    progress.start(src)
    if media_kind(src) == "image":
        return anon.image(src, dst, overwrite)
    return anon.video(src, dst, overwrite, on_frame=progress.frame, on_info=progress.info)
