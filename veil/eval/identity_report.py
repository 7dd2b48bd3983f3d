"""The report of ``veil eval identity``: frames kept / anonymized per clip and person, and the
distances the identify stage saw (see :mod:`veil.eval.identity`).

The costly error of selective anonymization is a *false keep*: a face that is not the
enrolled person shown un-anonymized under ``--spare`` (or the listed person shown under
``--only``). The report counts those face-frames and gives the exact (Clopper-Pearson) 95 %
interval, next to the rate at which the enrolled person is kept (the feature working).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..report.document import Document, Figure, Table
from .privacy_report import rate_cell, rate_text

__all__ = ["identity_totals", "identity_document"]


def identity_totals(res: dict) -> dict:
    """Face-frame totals over all clips (detected faces only; a face the detector missed is
    counted apart: it is not an identity decision)."""
    t: dict[str, Any] = {"enrolled_frames": 0, "enrolled_detected": 0, "spare_kept": 0, "only_kept_enrolled": 0,
         "enrolled_full_view_detected": 0, "spare_kept_full_view": 0,
         "other_frames": 0, "other_detected": 0, "spare_false_keep": 0, "only_kept_others": 0,
         "clips_enrolled_ok": 0, "clips": len(res["clips"])}
    for c in res["clips"]:
        for p in c["people"].values():
            if p["enrolled"]:
                t["enrolled_frames"] += p["frames"]
                t["enrolled_detected"] += p["detected"]
                t["spare_kept"] += p["spare_kept"]
                t["only_kept_enrolled"] += p["only_kept"]
                t["enrolled_full_view_detected"] += p["full_view_detected"]
                t["spare_kept_full_view"] += p["full_view_spare_kept"]
                t["clips_enrolled_ok"] += (p["full_view_detected"] > 0
                                           and p["full_view_spare_kept"] >= 0.95 * p["full_view_detected"])
            else:
                t["other_frames"] += p["frames"]
                t["other_detected"] += p["detected"]
                t["spare_false_keep"] += p["spare_kept"]
                t["only_kept_others"] += p["only_kept"]
    t["distances"] = {}
    for key in ("distances", "sampled"):
        for label, want in (("same", True), ("different", False)):
            v = np.array([d for c in res["clips"] for s, d in c[key] if s == want], float)
            t["distances"][f"{label} ({'identify stage' if key == 'distances' else 'sampled'})"] = _stats(v)
    return t


def _stats(v: np.ndarray) -> dict:
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "min": float(v.min()), "p5": float(np.percentile(v, 5)), "median": float(np.median(v)),
            "p95": float(np.percentile(v, 95)), "max": float(v.max())}


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}" if n else "–"


def identity_document(res: dict, folder: Path, settings_note: str) -> Document:
    t = identity_totals(res)
    res = {**res, "totals": t}
    thr, margin = res["threshold"], res["margin"]
    summary = (f"{t['clips']} built clips ({res['frames']} frames, faces about {res['face_px']} px, "
               f"{res['others']} other people each); each clip's person enrolled from {res['enrol_photos']} other photo(s). "
               f"--spare: the enrolled person visible in {rate_text(t['spare_kept_full_view'], t['enrolled_full_view_detected'])} "
               f"of the face-frames where veil detected the face in full view ({t['clips_enrolled_ok']}/{t['clips']} clips "
               f"at >= 95 %; {_pct(t['spare_kept'], t['enrolled_detected'])} % counting frames where the face is cut by "
               f"the frame's edge, which stay anonymized); "
               f"other people visible (false keep) in {rate_text(t['spare_false_keep'], t['other_detected'])}. "
               f"--only: the listed person visible in {rate_text(t['only_kept_enrolled'], t['enrolled_detected'])}, "
               f"other people visible in {_pct(t['only_kept_others'], t['other_detected'])} %. "
               f"Decision: match below {thr:g}, uncertain (anonymized) up to {thr + margin:g}.")
    doc = Document(title="Selective anonymization, end to end (veil eval identity)", summary=summary, data=res,
                   meta={"settings": settings_note})
    rows = []
    for c in res["clips"]:
        for name, p in c["people"].items():
            n = p["detected"]
            fv = p["full_view_detected"]
            rows.append([c["clip"], name, "enrolled" if p["enrolled"] else "other", p["frames"], n,
                         f"{p['spare_kept']} ({_pct(p['spare_kept'], n)} %)", f"{p['only_kept']} ({_pct(p['only_kept'], n)} %)",
                         f"{p['full_view_spare_kept']}/{fv} ({_pct(p['full_view_spare_kept'], fv)} %)",
                         "; ".join(c["reasons"].get(name, []))[:160]])
    doc.add("Per clip and person",
            "Frames: the face is in the picture; detected: veil found it (IoU >= 0.3 with the true box); "
            "'--spare kept' and '--only kept': face-frames left visible by each rule (from the same identify verdicts); "
            "'full view': the same for frames where the whole face box is inside the picture (a face cut by the frame's "
            "edge is not identified, so it stays anonymized). "
            "Under --spare only the enrolled person should be kept; under --only everyone but him or her.",
            [Table(["clip", "person", "role", "frames", "detected", "--spare kept", "--only kept", "--spare kept, full view",
                    "reasons (first seen)"], rows)])
    d = t["distances"]
    drows = [[k, v["n"], *(f"{v[q]:.3f}" if v["n"] else "–" for q in ("min", "p5", "median", "p95", "max"))]
             for k, v in d.items()]
    doc.add("Distances to the enrolled person",
            "'identify stage': every embedding veil computed in the clips (first view of a track, re-verifications); "
            "'sampled': every detected face in full view on every 10th frame, embedded the same way (more samples). "
            "Distance to the enrolled person's stored vectors, split by whether the face is that person.",
            [Table(["pair", "embeddings", "min", "p5", "median", "p95", "max"], drows)])
    doc.add("False keeps",
            "A stranger left visible is the costly error. Counted over detected face-frames of people other than the "
            "enrolled one, exact 95 % interval.",
            [Table(["rule", "face-frames", "kept", "rate (95 % CI)"],
                   [["--spare (others kept)", t["other_detected"], t["spare_false_keep"],
                     rate_cell(t["spare_false_keep"], t["other_detected"])],
                    ["--only (listed person kept)", t["enrolled_detected"], t["only_kept_enrolled"],
                     rate_cell(t["only_kept_enrolled"], t["enrolled_detected"])]])])
    fig = _histogram(res, folder / "figures" / "identity_distances.png", thr, margin)
    if fig:
        doc.sections[-2].figures.append(Figure("figures/identity_distances.png", "Distances to the enrolled person"))
    return doc


def _histogram(res: dict, path: Path, thr: float, margin: float) -> Path | None:
    from ..report.plots import _save, pyplot

    same = [d for c in res["clips"] for k in ("distances", "sampled") for s, d in c[k] if s]
    diff = [d for c in res["clips"] for k in ("distances", "sampled") for s, d in c[k] if not s]
    if not same and not diff:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1.2, 49)
    ax.hist(same, bins, alpha=0.6, label="same person")
    ax.hist(diff, bins, alpha=0.6, label="other people")
    ax.axvline(thr, color="k", lw=1)
    ax.axvspan(thr, thr + margin, color="orange", alpha=0.2, label="uncertain (anonymized)")
    ax.set_xlabel("distance to the enrolled person")
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)
