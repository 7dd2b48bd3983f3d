"""The re-identification evaluation as a report a person can read (``veil eval privacy``).

:func:`build_report` turns the results of :mod:`veil.eval.privacy_suite` into a
:class:`veil.report.document.Document`: a summary sentence per default filter with an exact
(Clopper-Pearson) 95 % confidence interval, a table per filter and strength, the no-filter
baseline, the pairs skipped and why, and a figure of rate and mean distance
(:func:`rates_figure`). When a filter is run at several strengths, :func:`strength_floors`
finds the weakest strength from which on nothing is re-identified, and the report compares it
with the floor veil enforces (``min_strength`` of the filter; weaker needs ``allow_weak``),
with a figure of rate against strength (:func:`strengths_figure`). :func:`rate_table` and :func:`rates_figure` also serve
``bench/privacy_eval.py``.

The report is about rates: it holds numbers and file names, never face pixels (no example
crops: the evaluation photos are under research-only licences) and never descriptors.
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..report.document import Document, Figure, Table
from .privacy import MATCH_THRESHOLD
from .privacy_suite import VariantResult

__all__ = ["clopper_pearson", "CI_METHOD", "rate_cell", "rate_text", "rate_table", "rates_figure", "build_report", "FIGURE",
           "Floor", "strength_floors", "strengths_figure", "SWEEP_FIGURE"]

CI_METHOD = "exact Clopper-Pearson 95 % interval"
FIGURE = "privacy_rates.png"
SWEEP_FIGURE = "privacy_strengths.png"
#: below this baseline rate the attack is too weak for a low rate after filtering to mean much
BASELINE_MIN = 0.9


# -- statistics --------------------------------------------------------------------------------
def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (stable for large n)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    lp, lq, lgn = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return min(1.0, sum(math.exp(lgn - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                        for i in range(k + 1)))


def _solve(f, target: float, increasing: bool) -> float:
    """p in [0, 1] with f(p) = target for a monotone f (bisection to 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for a binomial proportion k / n.

    Conservative: it covers the true rate at least ``conf`` of the time, also at k = 0,
    where the upper bound is ``1 - (alpha / 2) ** (1 / n)`` (9.3 % for 0 of 38).
    """
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} outside 0..{n}")
    a = (1.0 - conf) / 2
    lo = 0.0 if k == 0 else _solve(lambda p: 1.0 - _binom_cdf(k - 1, n, p), a, increasing=True)
    hi = 1.0 if k == n else _solve(lambda p: _binom_cdf(k, n, p), a, increasing=False)
    return lo, hi


def _pct(x: float) -> str:
    if x <= 0:
        return "0"
    if x >= 1:
        return "100"
    return f"{100 * x:.1f}"


def rate_cell(k: int, n: int, sep: str = " (", end: str = ")") -> str:
    """``"0.0 % (0–9.3 %)"``: the rate and its 95 % interval."""
    if n <= 0:
        return "–"
    lo, hi = clopper_pearson(k, n)
    return f"{100 * k / n:.1f} %{sep}{_pct(lo)}–{_pct(hi)} %{end}"


def rate_text(k: int, n: int) -> str:
    """``"0.0 %, 95 % CI 0–9.3 %"``, for sentences."""
    return rate_cell(k, n, ", 95 % CI ", "")


# -- table and figure --------------------------------------------------------------------------
def rate_table(rows: Sequence[Mapping[str, Any]], title: str = "") -> Table:
    """One row per variant, from :meth:`VariantResult.row` dicts."""
    out = []
    for r in rows:
        n = r["n"]
        strength = f"{r['strength']} (default)" if r.get("default") and r["strength"] != "-" else r["strength"]
        out.append([r["filter"], strength, n, r["matched"], rate_cell(r["matched"], n), r["mean_distance"],
                    f"{r['matched_aligned']} / {n}", r["min_distance"], f"{r.get('redetected', '–')} / {n}",
                    r.get("max_redetect_score")])
    return Table(["filter", "strength", "pairs", "matched", "rate (95 % CI)", "mean distance",
                  "matched, aligned attacker", "min distance", "re-detected by veil", "max detector score"], out,
                 title=title,
                 note=f"match: dlib descriptor distance < {MATCH_THRESHOLD}; CI: {CI_METHOD}; "
                      "aligned attacker: also knows the original face's landmarks; re-detected: veil's detector still "
                      "finds the anonymized face (score >= its operating threshold, box IoU >= 0.3)")


_COLOURS = {"blur": "#1565c0", "pixelate": "#2e7d32", "solid": "#9e9e9e", None: "#616161"}


def _default_colours(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """By veil filter (``veil_filter`` key): blur blue, pixelate green, solid grey, baseline dark grey."""
    return [_COLOURS.get(r.get("veil_filter"), "#6a1b9a") for r in rows]


def rates_figure(rows: Sequence[Mapping[str, Any]], path: str | Path, colours: Sequence[str] | None = None,
                 title: str = "") -> Path:
    """Re-identification rate (with 95 % CI, both attackers) and mean distance per variant."""
    from ..report.plots import _save, pyplot

    plt = pyplot()
    cols = list(colours) if colours is not None else _default_colours(rows)
    labels = [r["filter"] + ("" if r["strength"] == "-" else f"\n{r['strength']}") for r in rows]
    x = np.arange(len(rows))
    ns = np.array([max(r["n"], 1) for r in rows], float)
    rate = np.array([r["matched"] for r in rows]) / ns
    rate_al = np.array([r["matched_aligned"] for r in rows]) / ns
    ci = np.array([clopper_pearson(r["matched"], r["n"]) if r["n"] else (np.nan, np.nan) for r in rows]).reshape(-1, 2)
    err = np.vstack([np.clip(rate - ci[:, 0], 0, None), np.clip(ci[:, 1] - rate, 0, None)])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(8.0, 0.75 * len(rows) + 4), 4.6))
    a1.bar(x - 0.2, rate, 0.4, color=cols, yerr=err, capsize=2, ecolor="#333", label="attacker knows the box")
    a1.bar(x + 0.2, rate_al, 0.4, color=cols, alpha=0.45, hatch="//", label="... and the original landmarks")
    for xi, r, hi, ra in zip(x, rows, ci[:, 1], rate_al):
        top = np.nanmax([r["matched"] / max(r["n"], 1), ra, hi])
        a1.text(xi, min(top, 1.0) + 0.02, f"{r['matched']}/{r['n']}", ha="center", fontsize=7)
    a1.set_ylim(0, 1.15)
    a1.set_ylabel(f"same-person pairs still matched (d < {MATCH_THRESHOLD})")
    a1.set_title("Re-identification rate, 95 % CI (lower is better)", fontsize=10)
    a1.legend(fontsize=8, loc="upper right")
    a2.bar(x, [r["mean_distance"] for r in rows], 0.6, color=cols)
    a2.scatter(x, [r["min_distance"] for r in rows], color="k", marker="_", s=120, zorder=3, label="min over pairs")
    a2.axhline(MATCH_THRESHOLD, color="#b00020", lw=1, ls="--", label=f"match threshold {MATCH_THRESHOLD}")
    a2.set_ylabel("dlib descriptor distance to the other photo")
    a2.set_title("Mean distance (higher is better)", fontsize=10)
    a2.legend(fontsize=8, loc="lower right")
    for ax in (a1, a2):
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=7, rotation=60, ha="right")
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


# -- strength sweep ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Floor:
    """One filter's strength sweep, and the floor it calls for.

    ``measured``: the weakest evaluated strength from which on (it and every stronger one) no
    pair is re-identified by either attacker (None: even the strongest was). ``failing``: the
    strongest strength still re-identified (None: none was). ``redetect_free``: the same as
    ``measured`` for re-detection by veil's detector. ``recommended`` applies the rule of
    docs/benchmarks.md 3.1: the next evaluated strength above ``measured`` (one step of margin:
    the re-identification transition lies at least a step below), and no weaker than
    ``redetect_free`` (veil itself no longer finds the face). ``enforced``: the floor veil
    refuses to go below without ``allow_weak``.
    """

    filter: str
    n: int
    measured: float | None
    failing: float | None
    redetect_free: float | None
    recommended: float | None
    enforced: float

    @property
    def supported(self) -> bool:
        """The enforced floor is at or above the recommended one."""
        return self.recommended is not None and self.enforced >= self.recommended


def _tail_start(points: Sequence[tuple[float, bool]]) -> tuple[float | None, float | None]:
    """(weakest s with no failure at or above it, strongest failing s) from (strength, failed)."""
    failing = [s for s, bad in points if bad]
    worst = max(failing) if failing else None
    ok = sorted(s for s, bad in points if not bad and (worst is None or s > worst))
    return (ok[0] if ok else None), worst


def _strength(vr: VariantResult) -> float:
    assert vr.variant.strength is not None  # strength_floors keeps only results with one
    return vr.variant.strength


def _floor(name: str, vrs: Sequence[VariantResult], enforced: float) -> Floor:
    strengths = sorted({_strength(vr) for vr in vrs})
    reid = [(_strength(vr), vr.result.matched + vr.result.matched_aligned > 0) for vr in vrs]
    measured, failing = _tail_start(reid)
    redetect_free = _tail_start([(_strength(vr), vr.result.redetected > 0) for vr in vrs])[0]
    recommended = None
    if measured is not None and measured != strengths[-1]:
        recommended = strengths[strengths.index(measured) + 1]
        recommended = None if redetect_free is None else max(recommended, redetect_free)
    return Floor(name, vrs[0].result.n, measured, failing, redetect_free, recommended, enforced)


def strength_floors(results: Sequence[VariantResult]) -> list[Floor]:
    """Per veil filter evaluated at 3 or more strengths, its :class:`Floor`."""
    from ..config import RenderConfig

    by_filter: dict[str, list[VariantResult]] = {}
    for vr in results:
        if vr.variant.filter is not None and vr.variant.strength is not None:
            by_filter.setdefault(vr.variant.filter, []).append(vr)
    return [_floor(name, vrs, RenderConfig(filter=name).strength_floor) for name, vrs in by_filter.items()
            if len({vr.variant.strength for vr in vrs}) >= 3]


def _floor_text(f: Floor) -> str:
    def at(s: float | None) -> str:
        return "no strength evaluated" if s is None else f"{s:g}"

    text = f"{f.filter}: 0 of {f.n} pairs re-identified by either attacker from strength {at(f.measured)} up"
    text += f" ({rate_text(0, f.n)} at each)" if f.measured is not None else ""
    text += (f", still re-identified at {f.failing:g}" if f.failing is not None
             else ", no strength evaluated was re-identified")
    text += f"; veil's detector no longer finds any anonymized face from {at(f.redetect_free)} up. "
    text += f"Floor by the rule (one step above {at(f.measured)}, and no re-detection): {at(f.recommended)}. "
    text += (f"veil refuses strengths below {f.enforced:g} without --allow-weak: "
             + ("supported by this run." if f.supported else "NOT supported by this run: raise the floor, or sweep "
                                                           "more strengths."))
    return text


def strengths_figure(rows: Sequence[Mapping[str, Any]], floors: Sequence[Floor], path: str | Path) -> Path:
    """Re-identification and re-detection rate against strength, one panel per filter."""
    from ..report.plots import _save, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(floors), figsize=(5.2 * len(floors), 3.8), squeeze=False)
    for ax, f in zip(axes[0], floors):
        rs = sorted((r for r in rows if r.get("veil_filter") == f.filter and r.get("veil_strength") is not None),
                    key=lambda r: r["veil_strength"])
        x = np.array([r["veil_strength"] for r in rs])
        n = np.array([max(r["n"], 1) for r in rs], float)
        ci = np.array([clopper_pearson(r["matched"], r["n"]) for r in rs])
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=_COLOURS.get(f.filter, "#6a1b9a"), alpha=0.15, label="95 % CI")
        ax.plot(x, np.array([r["matched"] for r in rs]) / n, "o-", color=_COLOURS.get(f.filter), label="re-identified")
        ax.plot(x, np.array([r["matched_aligned"] for r in rs]) / n, "s--", color=_COLOURS.get(f.filter), alpha=0.6,
                label="... aligned attacker")
        ax.plot(x, np.array([r["redetected"] for r in rs]) / n, "^:", color="#b00020", label="re-detected by veil")
        ax.axvline(f.enforced, color="k", lw=1, label=f"veil's floor {f.enforced:g}")
        ax.set_xlabel(f"{f.filter} strength (1 = default)")
        ax.set_ylabel(f"share of {f.n} same-person pairs")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{f.filter}: weaker than the floor is refused", fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


# -- the document ------------------------------------------------------------------------------
def _row(vr: VariantResult) -> dict[str, Any]:
    r = vr.row()
    lo, hi = clopper_pearson(vr.result.matched, vr.result.n)
    v = vr.variant
    return {**r, "veil_filter": v.filter, "veil_strength": v.strength, "default": v.is_default,
            "ci_low": round(lo, 4), "ci_high": round(hi, 4)}


def _sentence(vr: VariantResult) -> str:
    v, res = vr.variant, vr.result
    if v.strength is None:
        name = f"{v.filter} fill" if v.filter == "solid" else str(v.filter)
    else:
        name = f"default {v.filter}" if v.is_default else f"{v.filter} at strength {v.strength_label}"
    return f"{name}: {res.matched} of {res.n} pairs re-identified ({rate_text(res.matched, res.n)})"


def _headline(results: Sequence[VariantResult]) -> list[VariantResult]:
    """Per veil filter, the default strength if evaluated, else the weakest one."""
    out: dict[str, VariantResult] = {}
    for vr in results:
        f = vr.variant.filter
        if f is None:
            continue
        cur = out.get(f)
        if cur is None or vr.variant.is_default or (
                not cur.variant.is_default and (vr.variant.strength or 0) < (cur.variant.strength or 0)):
            out[f] = vr
    return list(out.values())


def build_report(results: Sequence[VariantResult], folder: str | Path, *, pairs_csv: str | Path,
                 images: str | Path, same_pairs: int, missing: Sequence[tuple[str, str, str]] = (),
                 limit: int | None = None, meta: Mapping[str, Any] | None = None) -> Document:
    """The report of one ``veil eval privacy`` run; draws :data:`FIGURE` into ``folder``.

    ``results`` start with the baseline (no anonymization); ``same_pairs`` is the number of
    same-person pairs selected (after ``limit``), ``missing`` the pairs left out because an
    image is missing (non-empty = the data were partial).
    """
    folder = Path(folder)
    base = next((vr for vr in results if vr.variant.fn is None), None)
    if base is None:
        raise ValueError("build_report needs the baseline variant (fn None) among the results")
    res0 = base.result
    n = res0.n
    rows = [_row(vr) for vr in results]
    no_face = [tuple(s) for s in res0.skipped]
    skipped = [*missing, *no_face]
    partial = bool(missing)

    # summary
    heads = _headline(results)
    sentences = [_sentence(vr) for vr in heads]
    base_rate = res0.baseline_matched / n if n else float("nan")
    summary = ("; ".join(s[0].upper() + s[1:] if i == 0 else s for i, s in enumerate(sentences)) + "."
               if sentences else "No veil filter was evaluated.")
    summary += (f"\n\nWithout anonymization the same attack re-identifies {res0.baseline_matched} of {n} pairs "
                f"({rate_text(res0.baseline_matched, n)}), so a low rate above is the filter's doing, not a weak attack."
                if n else "\n\nNo pair could be evaluated.")
    target = [vr for vr in heads if vr.variant.is_default and vr.variant.filter in ("blur", "pixelate")]
    target_met = bool(target) and all(vr.result.matched == 0 and vr.result.n > 0 for vr in target)
    if target:
        summary += (f"\n\nTarget, 0 % re-identification for the default "
                    f"{' and '.join(str(vr.variant.filter) for vr in target)}: {'met' if target_met else 'NOT met'}"
                    f" on these {n} pairs.")
    if partial:
        summary += (f"\n\nPARTIAL DATA: {len(missing)} of {same_pairs} selected pairs were skipped because an "
                    "image is missing (--allow-partial); see 'Skipped pairs'.")
    if limit is not None:
        summary += f"\n\nSubset: only the first {limit} same-person pairs of the CSV (--limit {limit})."

    doc = Document("Privacy: re-identification after anonymization", summary)
    fig_path = rates_figure(rows, folder / FIGURE,
                            title=f"{n} same-person pairs; veil strength 1 = default")
    doc.add("Results per filter and strength",
            "Each row: the share of same-person pairs a face recognizer still matches after the first photo "
            "of the pair was anonymized (lower is better), and the mean descriptor distance to the second "
            f"photo (higher is better; a match is a distance under {MATCH_THRESHOLD}). Strength is relative to "
            "veil's default (1). The first row is the baseline, without anonymization.",
            tables=[rate_table(rows)],
            figures=[Figure(fig_path.name, "Re-identification rate (95 % CI) and mean distance per filter and "
                                           "strength")])
    floors = strength_floors(results)
    if floors:
        sweep = strengths_figure(rows, floors, folder / SWEEP_FIGURE)
        doc.add("Strength floor",
                "Per filter, the weakest strength from which on no pair is re-identified (by either attacker, at "
                "that strength and every stronger one evaluated), and from which on veil's own detector no longer "
                "finds the anonymized face (a second attacker: a face it finds is still face-shaped). With 0 of "
                f"{n} pairs the true rate is only bounded below {_pct(clopper_pearson(0, n)[1]) if n else '–'} % "
                "(95 %), and a better recognizer than dlib's moves the transition up, so the floor keeps a margin: "
                "one evaluated step above the weakest strength with no re-identification, and no weaker than the "
                "weakest strength with no re-detection.\n\n"
                + "\n\n".join(_floor_text(f) for f in floors),
                figures=[Figure(sweep.name, "Re-identification (95 % CI) and re-detection rate against strength; "
                                            "the vertical line is the floor veil enforces")])
    weak = n > 0 and base_rate < BASELINE_MIN
    doc.add("Baseline (no anonymization)",
            f"On the original photos the attack matches {res0.baseline_matched} of {n} pairs "
            f"({rate_text(res0.baseline_matched, n)}), mean distance {res0.baseline_mean_distance:.3f}. "
            + ("WARNING: the attack already fails on many originals, so low rates after anonymization say "
               "little about the filters." if weak else
               "The attack works on the originals, so the rates above measure what the filters remove."))
    if skipped:
        why = []
        if missing:
            why.append(f"{len(missing)} because an image listed in the CSV is missing")
        if no_face:
            why.append(f"{len(no_face)} because no face was detected in an image")
        doc.add("Skipped pairs",
                f"{len(skipped)} of {same_pairs} selected same-person pairs were not evaluated: " + "; ".join(why) + ".",
                tables=[Table(["file x", "file y", "reason"], [list(s) for s in skipped])])
    else:
        doc.add("Skipped pairs", f"None: all {same_pairs} selected same-person pairs were evaluated.")
    doc.add("Protocol",
            "The attacker is dlib's 128-d face descriptor (the model behind face_recognition) with dlib's "
            f"threshold: two faces are the same person when their distance is under {MATCH_THRESHOLD}. Only pairs "
            "labelled as the same person count. In both photos the largest face veil detects (native resolution, "
            "score >= 0.5) is the face; the first photo is anonymized given only that face, and the attacker is "
            "handed the face's location in the original photo, so a filter cannot win by making the face "
            "undetectable. The aligned attacker also reuses the landmarks found on the original face."
            f"\n\nConfidence intervals: {CI_METHOD} for a binomial proportion (conservative; for 0 matches of n "
            "the upper bound is 1 - 0.025^(1/n)).\n\nPairs: "
            f"{pairs_csv}; images: {images}.\n\nThis report holds rates, distances and file names only: no face "
            "images (the evaluation photos are under research-only licences) and no face descriptors.")
    doc.data = {
        "pairs_csv": str(pairs_csv),
        "images": str(images),
        "limit": limit,
        "same_person_pairs": same_pairs,
        "evaluated": n,
        "partial": partial,
        "skipped": [{"file_x": x, "file_y": y, "reason": r} for x, y, r in skipped],
        "threshold": MATCH_THRESHOLD,
        "ci": CI_METHOD,
        "target": {"filters": [vr.variant.filter for vr in target], "rate": 0.0, "met": target_met},
        "floors": [{**f.__dict__, "supported": f.supported} for f in floors],
        "rows": rows,
    }
    doc.meta = dict(meta or {})
    return doc
