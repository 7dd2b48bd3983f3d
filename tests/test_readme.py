"""Every snippet in README.md is an example that works: the Python block runs on a real photo
and clip, and every ``veil ...`` command line parses against the CLI (subcommand and flags
exist, values of choice flags are valid). A renamed flag or a wrong example fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import av
import numpy as np
import pytest
import typer
from PIL import Image

from veil.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def veil_commands() -> list[list[str]]:
    """Argument lists of every ``veil`` invocation in the README's bash blocks."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("|"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "veil":
                    out.append(words[1:])
    return out


def usage_error(args: list[str]) -> str | None:
    """Parse ``args`` as the CLI would, without running a command: the usage error, if any.

    Typer may vendor its own click, so its classes are reached through the objects
    (``resolve_command``, ``exit_code``), not imported.
    """
    cmd = typer.main.get_command(app)
    try:
        ctx = cmd.make_context("veil", list(args))
        while hasattr(cmd, "resolve_command"):
            rest = list(getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])) + ctx.args
            if not rest:
                break
            name, cmd, rest = cmd.resolve_command(ctx, rest)
            ctx = cmd.make_context(name, rest, parent=ctx)
    except Exception as exc:
        code = getattr(exc, "exit_code", None)
        if code == 0:  # --version, --help: an early, successful exit
            return None
        if code == 2 and hasattr(exc, "format_message"):
            return exc.format_message()
        raise
    return None


def test_readme_has_the_examples():
    cmds = veil_commands()
    assert len(blocks("python")) == 1 and len(cmds) >= 20
    assert ["--version"] in cmds
    assert any(c[:1] == ["anonymize"] and len([a for a in c if a.endswith((".jpg", ".mp4"))]) >= 3 for c in cmds)


@pytest.mark.parametrize("args", veil_commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_parses(args):
    assert usage_error(args) is None, f"README: `veil {' '.join(args)}`: {usage_error(args)}"


@pytest.mark.parametrize("args", [["anonymize", "photo.jpg", "--no-such-flag"], ["anonymize", "photo.jpg", "--audio", "mute"],
                                  ["no-such-command"], ["gallery", "add"], ["anonymize"]])
def test_readme_command_check_catches_mistakes(args):
    assert usage_error(args)


def test_readme_python_example_runs(tmp_path, monkeypatch, astronaut):
    """The README's Python block, verbatim, on a real photo and a short real clip."""
    Image.fromarray(astronaut).save(tmp_path / "photo.jpg", quality=95)
    with av.open(str(tmp_path / "clip.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for i in range(5):
            frame = np.ascontiguousarray(np.roll(astronaut[::2, ::2], 4 * i, axis=1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    monkeypatch.chdir(tmp_path)
    code = blocks("python")[0]
    scope: dict = {}
    exec(compile(code, str(README) + ":python", "exec"), scope)
    result = scope["result"]
    assert result.frame.shape == astronaut.shape and len(result.faces) == 1
    for name in ("photo_frame_anon.jpg", "photo_anon.jpg", "clip_anon.mp4", "report.json"):
        assert (tmp_path / name).stat().st_size > 0, name
