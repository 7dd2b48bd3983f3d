"""The readable report of ``veil eval widerface`` (Markdown, HTML, JSON; see veil.report.document).

Failure examples are cut from the evaluation images into the report folder only: they are
the dataset's pixels, under its licence, and never go anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from ..report.document import Document, Figure, Table, fmt
from ..report.plots import group_bars, image_grid, pr_curves
from .wider_run import WiderSet

__all__ = ["wider_document", "failure_examples"]

_TITLES = {
    "size": "Face size (box height)", "blur": "Blur", "illumination": "Illumination", "occlusion": "Occlusion",
    "pose": "Pose", "expression": "Expression", "perceived_skin": "Perceived skin tone (I-VI)",
    "perceived_gender": "Perceived gender", "perceived_age": "Perceived age",
}


def _p(p: float, shuffles: int) -> str:
    """A permutation p-value; 0 of N shuffles means p < 1/N, not 0."""
    return f"< {1 / max(shuffles, 1):.3g}" if p == 0 else f"= {p:.2f}"


def _pct(x: float | None) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def failure_examples(wset: WiderSet, preds: Mapping[str, tuple[np.ndarray, np.ndarray]], threshold: float,
                     hits: Mapping[str, np.ndarray], n: int = 8, min_height: float = 40) -> list[tuple[np.ndarray, str]]:
    """The largest missed valid faces (the most surprising misses), cut out with context.

    Red: the missed face's gt box; yellow: detections above the threshold nearby.
    """
    from ..io.images import read_image

    cands = []
    for path, g in wset.gt.items():
        miss = ~hits[path] & g.valid & (g.boxes[:, 3] >= min_height)
        for j in np.nonzero(miss)[0]:
            cands.append((float(g.boxes[j, 3]), path, int(j)))
    cands.sort(reverse=True)
    out = []
    seen: set[str] = set()
    for _height, path, k in cands:
        if path in seen:
            continue
        seen.add(path)
        rgb = read_image(wset.images / path).rgb.copy()
        x, y, w, hh = wset.gt[path].boxes[k]
        boxes, scores = preds.get(path, (np.zeros((0, 4)), np.zeros(0)))
        for (bx, by, bw, bh), s in zip(boxes, scores):
            if s >= threshold:
                cv2.rectangle(rgb, (int(bx), int(by)), (int(bx + bw), int(by + bh)), (255, 220, 0), 2)
        cv2.rectangle(rgb, (int(x), int(y)), (int(x + w), int(y + hh)), (255, 0, 0), 2)
        pad = int(max(w, hh))
        H, W = rgb.shape[:2]
        crop = rgb[max(0, int(y) - pad): min(H, int(y + hh) + pad), max(0, int(x) - pad): min(W, int(x + w) + pad)]
        attrs = wset.gt[path].attributes[k]
        cap = f"{Path(path).stem[:28]}\n{int(hh)} px, blur {attrs[0]}, occl {attrs[4]}, pose {attrs[5]}"
        out.append((crop, cap))
        if len(out) >= n:
            break
    return out


def wider_document(res: dict, folder: Path, title: str, settings_note: str,
                   examples: list[tuple[np.ndarray, str]] | None = None, timing: dict | None = None) -> Document:
    """Build the report from :func:`veil.eval.wider_run.analyse` results (figures go to ``folder``)."""
    ap, op = res["ap"], res["operating_point"]
    skin = res["slices"].get("perceived_skin")
    summary = (f"AP easy / medium / hard: {ap['easy']['ap']:.3f} / {ap['medium']['ap']:.3f} / {ap['hard']['ap']:.3f} "
               f"on {res['images']} images. At the operating threshold {op['threshold']:g}: recall of valid faces "
               f"{_pct(op['recall_valid'])} %, precision {_pct(op['precision'])} %, {op['fp_per_image']:.2f} false positives per image.")
    if skin:
        d = skin["disparity"]
        summary += (f" Recall spread across perceived skin tones: {d['spread_points']:.1f} points "
                    f"(95 % CI {d['spread_ci'][0]:.1f}–{d['spread_ci'][1]:.1f}), lowest {d['worst']}, highest {d['best']}")
        ch = d.get("chance")
        summary += (f"; chance alone gives {ch['median']:.1f} points with these group sizes (p {_p(ch['p_value'], ch['shuffles'])})." if ch and ch.get("shuffles") else ".")
    if res["partial"]:
        summary += f" PARTIAL DATA: {len(res['missing_images'])} images were missing and are not counted."
    doc = Document(title=title, summary=summary, data=res, meta={"settings": settings_note, **(timing or {})})

    figs = folder / "figures"
    pr_curves({f"{s} (AP {ap[s]['ap']:.3f})": (res["pr"][s]["recall"], res["pr"][s]["precision"]) for s in ("easy", "medium", "hard")},
              figs / "pr_curves.png", "WIDER FACE precision-recall")
    doc.add("Average precision (official protocol)",
            "AP at IoU 0.5, scores min-max normalised over the set, 1,000 thresholds; faces outside a setting "
            "and invalid faces are ignored. Intervals: image-level bootstrap.",
            [Table(["setting", "faces", "AP", "95 % CI"],
                   [[s, ap[s]["faces"], fmt(ap[s]["ap"]), f"{fmt(ap[s]['ci_low'])}–{fmt(ap[s]['ci_high'])}"] for s in ("easy", "medium", "hard")])],
            [Figure("figures/pr_curves.png", "Precision-recall curves per setting")])
    doc.add("Operating point", f"What veil hides when run with this threshold ({op['threshold']:g}): a missed face stays visible.",
            [Table(["faces", "recall %", "easy %", "medium %", "hard %", "precision %", "FP / image"],
                   [[op["faces_valid"], _pct(op["recall_valid"]), _pct(op["recall_easy"]), _pct(op["recall_medium"]),
                     _pct(op["recall_hard"]), _pct(op["precision"]), f"{op['fp_per_image']:.2f}"]])])

    rob: dict[str, list] = {}
    demo: dict[str, list] = {}
    tables = []
    for fam, sl in res["slices"].items():
        rows = [[g["group"], g["faces"], g["found"], _pct(g["recall"]), f"{_pct(g['ci_low'])}–{_pct(g['ci_high'])}"] for g in sl["groups"]]
        d = sl["disparity"]
        note = (f"spread {d['spread_points']:.1f} points (95 % CI {d['spread_ci'][0]:.1f}–{d['spread_ci'][1]:.1f}), "
                f"min/max ratio {d['min_max_ratio']:.3f}; lowest {d['worst']}, highest {d['best']}")
        ch = d.get("chance")
        if ch and ch.get("shuffles"):
            note += (f"; by chance alone (labels shuffled, same group sizes) the spread would be {ch['median']:.1f} points "
                     f"(95th percentile {ch['p95']:.1f}); p {_p(ch['p_value'], ch['shuffles'])}")
        tables.append(Table(["group", "faces", "found", "recall %", "95 % CI"], rows, _TITLES.get(fam, fam), note))
        series = [(g["group"], g["recall"], g["ci_low"], g["ci_high"]) for g in sl["groups"]]
        (demo if fam.startswith("perceived_") else rob)[_TITLES.get(fam, fam)] = series
    figures: list[Figure] = []
    for name, ser in (("robustness", rob), ("demographics", demo)):
        if ser:
            # one figure per family keeps group labels readable
            for fam_title, s in ser.items():
                fn = f"figures/recall_{name}_{len(figures)}.png"
                group_bars({"recall": s}, folder / fn, fam_title, ylim=(0, 1.02))
                figures.append(Figure(fn, f"Recall by {fam_title.lower()} (95 % CI)"))
    doc.add("Recall by slice",
            "Valid faces only; a face counts as found when a detection above the operating threshold overlaps it "
            "best with IoU >= 0.5. Perceived demographic labels exist for a subset of faces; 'Not Sure' is left out.",
            tables, figures)
    if examples:
        image_grid(examples, folder / "figures/failures.png", cols=4, title="Largest missed faces (red), detections (yellow)")
        doc.add("Failure examples", "The largest valid faces the detector missed at the operating threshold.",
                figures=[Figure("figures/failures.png", "Missed faces")])
    src = res["sources"]
    doc.add("Data", "\n".join(f"{k}: {v}" for k, v in src.items() if v)
            + (f"\n\nMissing images (not evaluated): {', '.join(res['missing_images'][:20])}" if res["partial"] else ""))
    return doc
