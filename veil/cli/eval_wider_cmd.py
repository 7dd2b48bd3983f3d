"""``veil eval widerface``: AP, operating point and recall by slice on a WIDER-format set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from .common import PresetName, build, one_line_errors
from .progress import console

__all__ = ["widerface"]


@one_line_errors
def widerface(
    data: Optional[Path] = typer.Argument(None, help="WIDER-format folder (our dev split, or the official download). "
                                                     "Default: $VEIL_DATA/widerface-dev."),
    gt: Optional[Path] = typer.Option(None, help="Ground-truth file (*_bbx_gt.txt), if not found in DATA."),
    images: Optional[Path] = typer.Option(None, help="Images folder, if not found in DATA."),
    difficulty: Optional[Path] = typer.Option(None, help="easy/medium/hard lists: a CSV, or the folder of the official .mat files."),
    labels: Optional[Path] = typer.Option(None, help="Per-face labels CSV (image,face_index,<columns>), e.g. perceived skin tone."),
    no_labels: bool = typer.Option(False, "--no-labels", help="Ignore a labels file found in DATA."),
    preset: PresetName = typer.Option("balanced", help="Settings preset to evaluate."),
    threshold: Optional[float] = typer.Option(None, help="Operating threshold (default: the preset's)."),
    max_side: Optional[int] = typer.Option(None, help="Detection resolution (long side, px); 0 = native."),
    out: Path = typer.Option(Path("wider_report"), "--out", help="Report folder (report.md, report.html, report.json)."),
    limit: Optional[int] = typer.Option(None, help="Only N images spread over the events (quick check)."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for recall intervals (AP uses a fifth)."),
    calibrate: Optional[float] = typer.Option(None, help="Also report the threshold that reaches this recall of valid faces."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Evaluate although some images are missing (the report says so)."),
    examples: int = typer.Option(8, help="Failure examples in the report (0 = none)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """WIDER FACE protocol AP, recall at the operating point, and recall by slice with 95 % CIs."""
    from rich.progress import Progress

    from ..eval.wider_report import failure_examples, wider_document
    from ..eval.wider_run import CURVE_MIN_SCORE, analyse, calibrate_threshold, detect_set, load_set
    from ..eval.widerface import face_hits
    from ..report.document import write_document
    from ..eval.data import default_data

    if data is None and gt is None:
        data = default_data("widerface-dev")
    wset = load_set(data, gt, images, difficulty, labels, allow_partial, limit, no_labels)
    anon = build(preset, threshold=threshold, max_side=max_side)
    thr = anon.config.detect.threshold
    with Progress(console=console, disable=quiet, transient=True) as progress:
        task = progress.add_task("detecting", total=len(wset.gt))
        t0 = time.perf_counter()
        preds, secs = detect_set(lambda rgb: anon.detect(rgb, min(CURVE_MIN_SCORE, thr)), wset,
                                 lambda k: progress.update(task, completed=k))
        wall = time.perf_counter() - t0
    res = analyse(wset, preds, thr, n_boot=bootstrap, n_boot_ap=max(0, bootstrap // 5))
    res["settings"] = anon.config.detect.model_dump(mode="json")
    res["preset"] = getattr(preset, "value", preset)
    res["detector"] = {"name": anon.pipeline.detector.name, "model_sha256": anon.pipeline.detector.model_sha256}
    res["timing"] = {"ms_per_image_mean": 1000 * float(np.mean(secs)), "ms_per_image_median": 1000 * float(np.median(secs)),
                     "wall_s": wall}
    if calibrate is not None:
        res["calibration"] = calibrate_threshold(wset, preds, calibrate)
    ex = failure_examples(wset, preds, thr, face_hits(wset.gt, preds, thr), examples) if examples else None
    note = f"preset {res['preset']}, detection {res['settings']}"
    doc = wider_document(res, out, "WIDER FACE evaluation", note, ex,
                         {"ms_per_image": round(res["timing"]["ms_per_image_mean"], 1)})
    paths = write_document(doc, out, "report")
    ap = res["ap"]
    console.print(f"AP easy/medium/hard {ap['easy']['ap']:.3f} / {ap['medium']['ap']:.3f} / {ap['hard']['ap']:.3f}; "
                  f"recall at {thr:g}: {100 * res['operating_point']['recall_valid']:.1f} % "
                  f"({res['timing']['ms_per_image_mean']:.0f} ms/image)")
    if "perceived_skin" in res["slices"]:
        d = res["slices"]["perceived_skin"]["disparity"]
        console.print(f"skin-tone recall spread {d['spread_points']:.1f} points (95 % CI {d['spread_ci'][0]:.1f}-{d['spread_ci'][1]:.1f})")
    if calibrate is not None:
        c = res["calibration"]
        console.print(f"threshold for recall {calibrate:g}: {c['threshold']:.3f} ({c['fp_per_image']:.2f} FP/image)"
                      if c["reachable"] else f"recall {calibrate:g} is not reachable with these detections")
    if wset.partial:
        console.print(f"[yellow]partial data:[/] {len(wset.missing)} missing images not evaluated")
    console.print(f"report: {paths['html']} ({paths['md'].name}, {paths['json'].name})")
