"""``veil eval identity``: selective anonymization end to end, on clips built from identity photos."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .common import PresetName, build, one_line_errors
from .progress import console

__all__ = ["identity"]


@one_line_errors
def identity(
    reid: Optional[Path] = typer.Argument(None, help="Identity photos: face_recognition/identities.csv and deepface/master.csv "
                                                     "(default: $VEIL_DATA/reid)."),
    preset: PresetName = typer.Option("balanced", help="Settings preset to evaluate."),
    match_threshold: Optional[float] = typer.Option(None, help="Same-person distance (default: the embedder's)."),
    uncertain_margin: Optional[float] = typer.Option(None, help="Width of the uncertain (anonymized) band above it."),
    enrol_photos: int = typer.Option(1, min=1, help="Photos each person is enrolled from (the clip shows another one)."),
    others: int = typer.Option(2, min=1, help="Other people in each clip."),
    frames: int = typer.Option(60, min=10, help="Frames per clip."),
    face_px: int = typer.Option(110, min=24, help="Face size in the clips (short side of the box, px)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N clips (a quick check)."),
    out: Path = typer.Option(Path("identity_report"), "--out", help="Report folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Enrol each person from one photo, show them from another in a clip with other people;
    report frames kept / anonymized under --spare and --only, and the distances veil saw."""
    from ..eval.data import default_data
    from ..eval.identity import run_identity_eval
    from ..eval.identity_report import identity_document, identity_totals
    from ..report.document import write_document

    reid = reid or default_data("reid")
    anon = build(preset, match_threshold=match_threshold, uncertain_margin=uncertain_margin)
    t0 = time.perf_counter()
    say = None if quiet else (lambda name: console.print(f"  clip {name}", markup=False, highlight=False))
    res = run_identity_eval(reid, anon.config, limit=limit, frames=frames, face_px=face_px, others=others,
                            enrol_photos=enrol_photos, progress=say)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["preset"] = getattr(preset, "value", preset)
    note = f"preset {res['preset']}, embedder {res['embedder']}, threshold {res['threshold']:g}, margin {res['margin']:g}"
    paths = write_document(identity_document(res, out, note), out, "report")
    t = identity_totals(res)

    def pct(k: int, n: int) -> str:
        return f"{100 * k / n:.1f} %" if n else "–"

    console.print(f"--spare: enrolled person visible {pct(t['spare_kept'], t['enrolled_detected'])} of "
                  f"{t['enrolled_detected']} face-frames; others visible {t['spare_false_keep']}/{t['other_detected']}")
    console.print(f"--only: listed person visible {t['only_kept_enrolled']}/{t['enrolled_detected']}; others visible "
                  f"{pct(t['only_kept_others'], t['other_detected'])}")
    console.print(f"report: {paths['html']} ({paths['md'].name}, {paths['json'].name})")
