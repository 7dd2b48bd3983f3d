"""The ``veil`` command line: a thin layer over :class:`veil.Anonymizer`.

Every failure that veil raises on purpose (:class:`veil.errors.VeilError`) is printed as one
line on stderr and mapped to its exit code; Ctrl-C exits with 130, SIGTERM (services,
containers, ``timeout``) is handled the same way and exits with 143, SIGHUP (a closed terminal or
SSH session) with 129. None leaves partial
output behind (the writers work on temporary files; live recordings are finalized).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import typer

from ..audit.outputs import record_outputs, watch
from ..config import PRESETS
from ..io.interrupts import terminate_as_interrupt
from ..render import FILTERS
from . import options as opt
from .common import build, one_line_errors, parse_rotations, parse_scales, warn_not_hiding
from .engine_options import AddressOpt, EngineOpt
from .audit_cmd import audit_app, verify_output
from .compliance_cmd import compliance_app
from .data_cmd import data_app
from .eval_cmd import eval_app
from .gallery_cmd import gallery_app
from .models_cmd import models_app
from .monitor_cmd import monitor
from .retention_cmd import retention_app
from .stream_cmd import stream
from .progress import RunProgress, console, err_console, file_progress
from .safe_text import PrintableFormatter, markup_safe, printable
from .plan_cmd import analyze, render
from .serve_cmd import serve

app = typer.Typer(
    name="veil",
    help="Privacy-by-design face anonymization for images and videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("veil")
app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")
app.add_typer(gallery_app, name="gallery")
app.add_typer(data_app, name="data")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(compliance_app, name="compliance")
app.command("verify")(verify_output)
app.command("monitor")(monitor)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"veil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print veil's version and exit.")) -> None:
    """Privacy-by-design face anonymization for images and videos."""


@app.command()
@one_line_errors
def anonymize(
    inputs: List[Path] = typer.Argument(..., metavar="INPUT", show_default=False,
                                        readable=False,  # unreadable: bad input (exit 3), not a usage error
                                        help="Images, videos or folders (processed recursively); several may be given."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file or folder (default NAME_anonymized next to each input); "
                                               "with several inputs, a folder that receives each by name."),
    preset: opt.Preset = "balanced",
    filter: opt.Filter = None,
    color: opt.Color = None,
    image: opt.Image = None,
    shape: opt.Shape = None,
    mask_scale: opt.MaskScale = None,
    head: opt.Head = None,
    feather: opt.Feather = None,
    strength: opt.Strength = None,
    allow_weak: opt.AllowWeak = None,
    threshold: opt.Threshold = None,
    max_side: opt.MaxSide = None,
    tile: opt.Tile = None,
    device: opt.Device = None,
    detector: opt.Detector = None,
    low_light: opt.LowLight = None,
    low_light_bright_end: Optional[float] = typer.Option(None, rich_help_panel=opt.DETECT,
                                                         help="Skip the low-light pass when the frame's 99th-percentile luma is at or above "
                                                              "this (e.g. 100: lit stages, night scenes with lights; faster there, fewer faces covered)."),
    scales: Optional[str] = typer.Option(None, rich_help_panel=opt.DETECT,
                                         help="Extra passes at these factors of the native size, e.g. '0.5,1.5' (thorough's); '' = none."),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", rich_help_panel=opt.DETECT, help="Extra pass on the mirrored frame."),
    rotations: Optional[str] = typer.Option(None, rich_help_panel=opt.DETECT,
                                            help="Extra passes on the frame turned clockwise by these angles, e.g. '90,270': faces of "
                                                 "people lying down (about 3x the detection time); '' = none."),
    codec: opt.Codec = None,
    crf: opt.Crf = None,
    encoder_preset: opt.EncoderPreset = None,
    copy_audio: opt.CopyAudio = None,
    start: opt.Start = None,
    end: opt.End = None,
    keep_metadata: opt.KeepMetadata = None,
    max_memory_mb: opt.MaxImageMb = None,
    report: opt.Report = None,
    overwrite: opt.Overwrite = False,
    skip_existing: bool = typer.Option(False, "--skip-existing", help="In folders, skip files whose output exists.", rich_help_panel=opt.OUTPUT),
    only_beyond: Optional[float] = typer.Option(None, help="Anonymize only faces farther than this (metres).", rich_help_panel=opt.DEPTH),
    keep_nearest: opt.KeepNearest = None,
    focal_px: Optional[float] = typer.Option(None, help="Focal length in pixels, when the image has no EXIF focal length.", rich_help_panel=opt.DEPTH),
    hfov: Optional[float] = typer.Option(None, help="Horizontal field of view in degrees (instead of --focal-px).", rich_help_panel=opt.DEPTH),
    depth_model: Optional[Path] = typer.Option(None, help="ONNX monocular depth model (see `veil models`).", rich_help_panel=opt.DEPTH),
    depth_frames: Optional[Path] = typer.Option(None, help="Folder of RGB-D depth frames (16-bit PNG, mm), one per frame.", rich_help_panel=opt.DEPTH),
    background_beyond: Optional[float] = typer.Option(None, help="Also blur everything beyond this depth (metres; needs dense depth).", rich_help_panel=opt.DEPTH),
    spare: opt.Spare = None,
    spare_enrolled: opt.SpareEnrolled = None,
    only: opt.Only = None,
    gallery: opt.Gallery = None,
    key_file: opt.KeyFile = None,
    name_hidden: opt.NameHidden = None,
    quiet: opt.Quiet = False,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Detect faces and hide them. Output keeps format, resolution, frame rate and (unless --audio drop) audio."""
    anon = build(preset, filter=filter, color=color, image=image, shape=shape, mask_scale=mask_scale, head=head,
                  feather=feather, strength=strength, allow_weak=allow_weak, threshold=threshold, max_side=max_side, tile=tile,
                  device=device, detector=detector, low_light=low_light, low_light_bright_end=low_light_bright_end,
                  scales=parse_scales(scales), flip=flip, rotations=parse_rotations(rotations), codec=codec, crf=crf, encoder_preset=encoder_preset,
                  copy_audio=copy_audio, start=start, end=end, keep_metadata=keep_metadata, max_memory_mb=max_memory_mb,
                  only_beyond=only_beyond, keep_nearest=keep_nearest, focal_px=focal_px, hfov=hfov,
                  depth_model=depth_model, depth_frames=depth_frames, background_beyond=background_beyond,
                  spare=spare or None, spare_enrolled=spare_enrolled, only=only or None, gallery=gallery, key_file=key_file,
                  name_hidden=name_hidden, report_path=report,  # checked now, not after the work
                  engine=engine, address=address)
    hides = warn_not_hiding(anon)
    watcher = watch(anon)
    try:
        items = _run(anon, _targets(inputs, output), overwrite, skip_existing, quiet)
    finally:
        anon.close()
        if report is not None:
            anon.write_report()
        record_outputs(anon, watcher=watcher)
    _summary(items, quiet, hides)
    if any(it.status == "error" for it in items):
        raise typer.Exit(3)


def _targets(inputs: list[Path], output: Path | None) -> list[tuple[Path, Path | None]]:
    """(input, output) pairs. With several inputs, ``-o`` is a folder and each input keeps its
    name inside it; two inputs with one name are refused before anything runs."""
    from ..errors import ConfigError, OutputError
    from ..io.paths import make_folder

    if len(inputs) == 1 or output is None:
        return [(p, output) for p in inputs]
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: with several inputs, -o must be a folder")
    pairs = [(p, output / p.name) for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in seen:
            raise ConfigError(f"{seen[dst]} and {src} would both be written to {dst}; run them separately")
        seen[dst] = src
    make_folder(output)
    return [(src, dst) for src, dst in pairs]  # typed as the other branch's pairs


def _run(anon, targets: list[tuple[Path, Path | None]], overwrite: bool, skip_existing: bool, quiet: bool) -> list:
    """Every target under one progress display. A single file raises its error (exit code by
    kind); with folders or several inputs, bad files are reported and the others processed."""
    from ..errors import VeilError
    from ..io.paths import walk_media
    from ..report import ItemReport

    files = sum(sum(1 for _ in walk_media(src, on_error=lambda path, exc: None)) if src.is_dir() else 1  # tree reports them
                for src, _ in targets)
    items: list = []
    with RunProgress(files, quiet) as progress:
        for src, dst in targets:
            if src.is_dir():
                items += anon.tree(src, dst, overwrite, skip_existing, on_item=progress.done,
                                   on_start=progress.start, on_frame=progress.frame, on_info=progress.info)
                continue
            try:
                item = file_progress(anon, src, dst, overwrite, progress)
            except VeilError as exc:
                if len(targets) == 1:
                    raise
                last = anon.report.items[-1] if anon.report.items else None
                if last is not None and last.input == str(src) and last.status == "error":
                    item = last
                else:  # failed before the file was opened (e.g. it does not exist)
                    item = anon.report.add(ItemReport(input=str(src), kind="file", output=str(dst) if dst else None,
                                                      status="error", error=str(exc)))
            progress.done(src, item)
            items.append(item)
    return items


def _summary(items, quiet: bool, hides: bool = True) -> None:
    ok = [i for i in items if i.status == "ok"]
    bad = [i for i in items if i.status == "error"]
    skipped = [i for i in items if i.status == "skipped"]
    if not quiet:
        if hides:
            done = f"{len(ok)} file(s) anonymized ({sum(i.counts['anonymized'] for i in ok)} face detections hidden)"
        else:  # none / debug: the report counts nothing as anonymized either
            done = f"{len(ok)} file(s) written ({sum(i.counts['faces'] for i in ok)} face detections found, NOT hidden)"
        console.print(f"{done}, {len(skipped)} skipped, {len(bad)} failed")
        if len(items) == 1 and ok:
            console.print(f"-> {printable(ok[0].output)}", markup=False, highlight=False)
    for i in bad:
        err_console.print(f"[red]error:[/] {markup_safe(i.error)}")


@app.command()
@one_line_errors
def detect(
    input: Path = typer.Argument(..., help="An image or a folder of images (e.g. WIDER FACE images/)."),
    wider_out: Path = typer.Option(..., "--wider-out", help="Write WIDER-format predictions <event>/<name>.txt here."),
    min_score: Optional[float] = typer.Option(None, help="Keep detections down to this score (default the operating threshold)."),
    preset: opt.Preset = "balanced",
    threshold: opt.Threshold = None,
    max_side: opt.MaxSide = None,
    tile: opt.Tile = None,
    device: opt.Device = None,
    detector: opt.Detector = None,
    quiet: opt.Quiet = False,
) -> None:
    """Write detections in the WIDER FACE submission layout, for evaluation."""
    from .detect_cmd import run_detect

    anon = build(preset, threshold=threshold, max_side=max_side, tile=tile, device=device, detector=detector)
    n_img, n_faces = run_detect(anon, input, wider_out, min_score, quiet)
    if not quiet:
        console.print(f"{n_img} image(s), {n_faces} detection(s) -> {printable(wider_out)}", markup=False)


@app.command()
@one_line_errors
def info() -> None:
    """Version, model files (with sha256) and execution providers."""
    import onnxruntime

    from .. import __version__
    from ..models import MODELS, resolve_model

    console.print(f"veil {__version__}")
    from ..detect import DETECTORS

    for name in MODELS:
        path, digest = resolve_model(name)
        role = "" if name in DETECTORS else "; shipped, not yet a detector"
        console.print(f"model {name}: {path} sha256 {digest} ({MODELS[name].license}, verified{role})")
    console.print("onnxruntime providers: " + ", ".join(onnxruntime.get_available_providers()))
    console.print("presets: " + ", ".join(PRESETS))
    console.print("filters: " + ", ".join(FILTERS))


app.command()(stream)
app.command()(analyze)
app.command()(render)
app.command()(serve)


def main(argv: list[str] | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("veil: %(message)s"))  # messages name files: escaped
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    with terminate_as_interrupt():  # SIGTERM, SIGHUP: cleaned up like Ctrl-C (the library never sets handlers)
        app(args=argv, prog_name="veil")
