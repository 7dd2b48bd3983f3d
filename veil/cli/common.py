"""Pieces shared by the CLI commands: choices generated from the registries, building an
Anonymizer from flags, and one-line error handling."""

from __future__ import annotations

import enum
import functools
import importlib
import signal
from typing import TYPE_CHECKING, TypeAlias

import typer

from ..config import DEVICES, PRESETS, SHAPES
from ..detect import DETECTOR_NAMES
from ..errors import ConfigError, VeilError
from ..io.interrupts import exit_status, signal_label
from ..render import FILTERS
from .progress import err_console
from .safe_text import printable

__all__ = ["PresetName", "FilterName", "DetectorName", "DeviceName", "ShapeName",
           "AudioChoice", "build", "given_settings", "with_flag_errors", "flag_for", "warn_not_hiding", "one_line_errors",
           "one_line_errors_unrecorded", "parse_rotations", "parse_scales"]


def _choices(name: str, values) -> type[enum.Enum]:
    """A str Enum for Typer, generated from a registry so new entries need no CLI edit."""
    return enum.Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


if TYPE_CHECKING:  # generated at run time, which a type checker cannot follow: their members are str
    PresetName: TypeAlias = str
    FilterName: TypeAlias = str
    DetectorName: TypeAlias = str
    DeviceName: TypeAlias = str
    ShapeName: TypeAlias = str
    AudioChoice: TypeAlias = str
else:
    PresetName = _choices("PresetName", PRESETS)
    FilterName = _choices("FilterName", FILTERS)
    DetectorName = _choices("DetectorName", DETECTOR_NAMES)
    DeviceName = _choices("DeviceName", DEVICES)
    ShapeName = _choices("ShapeName", SHAPES)
    AudioChoice = _choices("AudioChoice", ["keep", "drop"])


def _value(choice):
    return choice.value if isinstance(choice, enum.Enum) else choice


def flag_for(setting: str) -> str:
    """The command-line flag of a config setting: ``render.color`` -> ``--color``.

    Read from the running command's own option (``image.max_memory_mb`` -> ``--max-image-mb``,
    ``video.copy_audio`` -> ``--audio``, ``render.head`` -> ``--head/--face-only``): command
    parameters are named after the setting they fill (see :mod:`veil.cli.options`). Outside a
    command, the setting's name as a flag.
    """
    field = setting.rsplit(".", 1)[-1]
    ctx = _current_context()
    for param in getattr(getattr(ctx, "command", None), "params", []):
        if param.name == field and getattr(param, "opts", None):
            longs = [o for o in param.opts if o.startswith("--")] or list(param.opts)
            return "/".join(longs[:1] + [o for o in param.secondary_opts if o.startswith("--")][:1])
    return "--" + field.replace("_", "-")


def given_settings(overrides: dict) -> dict:
    """The settings the user gave (None = not given), choices as their values; ``--audio keep``
    is ``copy_audio=True``."""
    given = {k: _value(v) for k, v in overrides.items() if v is not None}
    if isinstance(given.get("copy_audio"), str):
        given["copy_audio"] = given["copy_audio"] == "keep"
    return given


def build(preset, **overrides):
    """An Anonymizer from a preset and the flags the user gave (None = not given).

    An invalid value is reported with the flag the user typed (``--color``), not the
    internal setting it fills (``render.color``).
    """
    from ..api import Anonymizer

    given = given_settings(overrides)
    if given.get("spare") or given.get("only") or given.get("spare_enrolled"):
        purge_expired(given.get("gallery"), given.get("key_file"))
    return with_flag_errors(lambda: Anonymizer(preset=_value(preset), **given), given)


def with_flag_errors(make, given: dict):
    """``make()``, its :class:`ConfigError` about a setting the user gave reworded to name the flag."""
    try:
        return make()
    except ConfigError as exc:
        setting = getattr(exc, "setting", None)
        if setting is not None and "." not in setting:  # a rule across a section's fields: its text names the flags
            raise ConfigError(exc.reason) from None
        if setting is None or setting.rsplit(".", 1)[-1] not in given:
            raise
        flag, value = flag_for(setting), given[setting.rsplit(".", 1)[-1]]
        if flag.split("/")[0] in exc.reason:  # the message names the flag already
            raise ConfigError(exc.reason) from None
        shown = f"{flag}: " if repr(value) in exc.reason else f"invalid {flag} {value!r}: "
        raise ConfigError(shown + exc.reason) from None


def warn_not_hiding(anon) -> bool:
    """Warn on stderr when the filter leaves faces visible (none, debug); True if it hides them."""
    if anon.pipeline.anonymizes:
        return True
    err_console.print(f"[bold yellow]warning:[/] --filter {anon.config.render.filter} does not anonymize: faces stay visible")
    return False


def purge_expired(gallery, key_file) -> None:
    """Remove the people whose consent expired from the gallery about to be used (each removal
    is an audit event); a gallery that cannot be opened fails here, as the run would."""
    from ..audit.retention import purge_expired_consents
    from ..identify import Gallery
    from ..identify.gallery import default_gallery_path

    if not (gallery or default_gallery_path()).exists():
        return
    with Gallery(gallery, key_file) as g:
        purge_expired_consents(g)


def _parse_list(text: str | None, kind: type, flag: str, what: str) -> tuple | None:
    """``"a,b"`` -> ``(kind(a), kind(b))``; ``""`` -> ``()``; None stays None (not given)."""
    if text is None:
        return None
    try:
        return tuple(kind(t) for t in text.replace(" ", ",").split(",") if t)
    except ValueError:
        raise ConfigError(f"{flag} takes {what} separated by commas, got {text!r}") from None


def parse_scales(text: str | None) -> tuple[float, ...] | None:
    """``"0.5,1.5"`` -> ``(0.5, 1.5)``; ``""`` -> ``()``; None stays None (not given)."""
    return _parse_list(text, float, "--scales", "numbers")


def parse_rotations(text: str | None) -> tuple[int, ...] | None:
    """``"90,270"`` -> ``(90, 270)`` (clockwise degrees); ``""`` -> ``()``; None stays None."""
    return _parse_list(text, int, "--rotations", "clockwise angles (90,270)")


def one_line_errors(fn):
    """Print VeilErrors as one line and exit with their code; an interruption (Ctrl-C, or
    SIGTERM: see :mod:`veil.io.interrupts`) says what it left and exits 130 / 143. The
    command's run is recorded in the audit log (start before any work, end with the exit status)."""
    return _one_line(fn, record=True)


def one_line_errors_unrecorded(fn):
    """:func:`one_line_errors` without the audit record: for ``veil audit``, which must work on
    a log that cannot be written (to say what is wrong with it)."""
    return _one_line(fn, record=False)


def _one_line(fn, record: bool):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            if not record:
                return fn(*args, **kwargs)
            from ..audit import recorded_run

            ctx = _current_context()
            with recorded_run(_command_name(ctx, fn), ctx.params if ctx else kwargs):
                return fn(*args, **kwargs)
        except VeilError as exc:
            err_console.print(f"veil: error: {printable(exc)}", markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            # writers of files remove their temporary file; a live run says what it kept
            outcome = getattr(exc, "outcome", "no partial output was written")
            label = signal_label(getattr(exc, "signum", signal.SIGINT))
            err_console.print(f"veil: interrupted ({label}); {outcome}", markup=False, highlight=False)
            raise typer.Exit(exit_status(exc)) from None

    return wrapper


def _current_context():
    """The running command's click context: Typer >= 0.20 ships its own copy of click, older
    ones use click itself."""
    for name in ("typer._click.globals", "click.globals"):
        try:
            ctx = importlib.import_module(name).get_current_context(silent=True)
        except ImportError:
            continue
        if ctx is not None:
            return ctx
    return None


def _command_name(ctx, fn) -> str:
    """``veil gallery add`` however veil was started (``veil``, ``python -m veil``, a test runner)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["veil", *reversed(names)]) if names else f"veil {fn.__name__}"
