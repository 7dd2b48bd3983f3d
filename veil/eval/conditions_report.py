"""Run ``veil eval conditions`` and turn its results into a readable report.

:func:`run_conditions` renders every crop under every condition (see
:mod:`veil.eval.conditions`), runs the product's detector on it and records whether the face
was found; :func:`conditions_document` builds the report (recall per group and condition
with 95 % intervals, spread and min/max ratio per condition, a figure, a few misses).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..faces import Faces
from ..report.document import Document, Figure, Table
from ..report.plots import group_bars, image_grid
from .conditions import CONDITIONS, Crop, expected_box, found_in, render
from .slices import bootstrap_recall, chance_spread, disparity

__all__ = ["run_conditions", "conditions_document"]


def _load(path: Path) -> np.ndarray:
    from ..io.images import read_image

    return read_image(path).rgb


def run_conditions(detect: Callable[[np.ndarray], Faces], folder: Path, crops: Sequence[Crop],
                   conditions: Sequence[tuple[str, float | None]], threshold: float, group: str,
                   n_boot: int = 1000, on_step: Callable[[], None] | None = None, keep_misses: int = 4) -> dict:
    """Found / missed per crop and condition, and recall per group with intervals."""
    found = {f"{n}:{lv}" if lv is not None else n: np.zeros(len(crops), bool) for n, lv in conditions}
    secs = {k: 0.0 for k in found}
    misses: dict[str, list[tuple[np.ndarray, str]]] = {k: [] for k in found}
    for i, crop in enumerate(crops):
        rgb = _load(folder / crop.file)
        for (name, level), key in zip(conditions, found):
            img = render(rgb, crop.file, name, level)
            t0 = time.perf_counter()
            faces = detect(img)
            secs[key] += time.perf_counter() - t0
            ok = found_in(faces, expected_box(rgb.shape[:2], name, level, img.shape[:2]), threshold)
            found[key][i] = ok
            if not ok and len(misses[key]) < keep_misses:
                misses[key].append((img, f"{crop.groups[group]}"))
            if on_step:
                on_step()
    labels = [np.array([c.groups[group]], object) for c in crops]
    order = sorted({c.groups[group] for c in crops})
    results = {}
    for key, hit in found.items():
        per_crop = {str(i): hit[i:i + 1] for i in range(len(crops))}
        rows, boot = bootstrap_recall(per_crop, labels, None, order, n_boot)
        disp = None
        if len(rows) > 1:
            d = disparity(rows, boot)
            disp = {**d.as_dict(), "chance": chance_spread(per_crop, labels, None, [r.group for r in rows], d.spread, n_boot)}
        results[key] = {
            "recall": float(hit.mean()) if len(hit) else float("nan"),
            "groups": [r.as_dict() for r in rows],
            "disparity": disp,
            "ms_per_crop": 1000 * secs[key] / max(1, len(crops)),
        }
    return {"group": group, "crops": len(crops), "threshold": threshold, "conditions": results,
            "levels": {n: {"level": lv, "meaning": CONDITIONS[n][2]} for n, lv in conditions}, "_misses": misses}


def conditions_document(res: dict, folder: Path, settings_note: str, targets: tuple[float, float] | None = (0.93, 3.0)) -> Document:
    """The report; figures and miss examples go to ``folder/figures``."""
    group = res["group"]
    conds = res["conditions"]
    lines = []
    for key, c in conds.items():
        d = c["disparity"]
        worst = min(c["groups"], key=lambda g: g["recall"]) if c["groups"] else None
        lines.append(f"{key}: recall {100 * c['recall']:.1f} %"
                     + (f", lowest group {worst['group']} {100 * worst['recall']:.1f} %, spread {d['spread_points']:.1f} points" if d and worst else ""))
    summary = (f"{res['crops']} labelled face crops, each rendered under every condition, detector threshold "
               f"{res['threshold']:g}; recall by {group}. " + "; ".join(lines) + ".")
    data = {k: v for k, v in res.items() if not k.startswith("_")}
    doc = Document(title=f"Detection under capture conditions, by {group}", summary=summary, data=data,
                   meta={"settings": settings_note})
    groups = [g["group"] for g in next(iter(conds.values()))["groups"]]
    rows = []
    for key, c in conds.items():
        by = {g["group"]: g for g in c["groups"]}
        d = c["disparity"] or {}
        rows.append([key, f"{100 * c['recall']:.1f}"] + [f"{100 * by[g]['recall']:.1f}" for g in groups]
                    + [f"{d.get('spread_points', float('nan')):.1f}", f"{d.get('min_max_ratio', float('nan')):.3f}", f"{c['ms_per_crop']:.0f}"])
    levels = "; ".join(f"{n}: {v['level']:g} ({v['meaning']})" for n, v in res["levels"].items() if v["level"] is not None)
    doc.add("Recall by condition and group",
            "A crop counts as found when a detection above the threshold overlaps the crop's nominal face box with IoU >= 0.4. "
            f"Levels: {levels}. Rendering is seeded per crop, so every run sees the same pixels.",
            [Table(["condition", "all %", *[f"{g} %" for g in groups], "spread (pts)", "min/max", "ms / crop"], rows)])
    ci_rows = []
    for key, c in conds.items():
        for g in c["groups"]:
            ci_rows.append([key, g["group"], g["faces"], g["found"], f"{100 * g['recall']:.1f}",
                            f"{100 * g['ci_low']:.1f}–{100 * g['ci_high']:.1f}"])
    spread_rows = []
    for key, c in conds.items():
        d = c["disparity"]
        if d:
            ch = d.get("chance") or {}
            spread_rows.append([key, f"{d['spread_points']:.1f}", f"{d['spread_ci'][0]:.1f}–{d['spread_ci'][1]:.1f}",
                                f"{ch.get('median', float('nan')):.1f}", f"{ch.get('p_value', float('nan')):.3f}"])
    doc.add("Intervals", "Bootstrap over crops, percentile 95 % intervals; the spread interval uses the same resamples. "
            "'Chance' is the spread that shuffled group labels give with the same group sizes (a perfectly fair "
            "detector would show about that much), and p the share of shuffles with a spread at least as large.",
            [Table(["condition", group, "crops", "found", "recall %", "95 % CI"], ci_rows),
             Table(["condition", "spread (pts)", "95 % CI", "chance (median)", "p"], spread_rows, "Spread between groups")])
    figs = folder / "figures"
    series = {key: [(g["group"], g["recall"], g["ci_low"], g["ci_high"]) for g in c["groups"]] for key, c in conds.items()}
    group_bars(series, figs / "conditions_recall.png", f"Recall by {group} and condition", ylim=(0, 1.02))
    figures = [Figure("figures/conditions_recall.png", f"Recall by {group} under each condition (95 % CI)")]
    tiles = [(img, f"{key}: {cap}") for key, ms in res.get("_misses", {}).items() for img, cap in ms][:16]
    if tiles:
        image_grid(tiles, figs / "conditions_misses.png", cols=4, title="Missed crops (as the detector saw them)")
        figures.append(Figure("figures/conditions_misses.png", "Examples of missed crops per condition"))
    doc.sections[0].figures.extend(figures)
    if targets:
        floor, spread = targets
        checks = []
        for key, c in conds.items():
            worst = min(g["recall"] for g in c["groups"])
            d = c["disparity"] or {"spread_points": float("nan")}
            checks.append([key, f"{100 * worst:.1f}", "yes" if worst >= floor else "no",
                           f"{d['spread_points']:.1f}", "yes" if d["spread_points"] <= spread else "no"])
        doc.add("Targets", f"Every group at or above {100 * floor:.0f} % recall and a spread of at most {spread:g} points.",
                [Table(["condition", "lowest group %", f">= {100 * floor:.0f} %", "spread", f"<= {spread:g}"], checks)])
    return doc
