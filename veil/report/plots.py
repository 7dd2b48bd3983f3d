"""Figures for evaluation reports (matplotlib, headless), saved as PNG files.

matplotlib is in the ``eval`` extra; without it :func:`pyplot` raises one clear line.
Each function draws one figure into ``path`` and returns that path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["pyplot", "pr_curves", "group_bars", "image_grid"]


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("reports with figures need matplotlib: pip install 'veil[eval]'") from None
    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    fig.clf()
    pyplot().close(fig)
    return path


def pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> Path:
    """Precision-recall curves: ``{label: (recall, precision)}``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, (rec, prec) in curves.items():
        rec, prec = np.asarray(rec), np.nan_to_num(np.asarray(prec))
        ax.plot(rec, prec, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def group_bars(series: Mapping[str, Sequence[tuple[str, float, float, float]]], path: Path, title: str = "",
               ylabel: str = "recall", ylim: tuple[float, float] | None = None) -> Path:
    """Grouped bars with 95 % error bars.

    ``series``: ``{series label: [(group, value, ci_low, ci_high), ...]}``, the same groups
    in every series (e.g. one series per condition, one bar per race group).
    """
    plt = pyplot()
    labels = list(series)
    groups = [g for g, *_ in next(iter(series.values()))] if series else []
    n = max(1, len(labels))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(groups) * n + 2), 4.0))
    x = np.arange(len(groups))
    for i, lab in enumerate(labels):
        vals = {g: (v, lo, hi) for g, v, lo, hi in series[lab]}
        v = np.array([vals[g][0] for g in groups], float)
        lo = np.array([vals[g][1] for g in groups], float)
        hi = np.array([vals[g][2] for g in groups], float)
        err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
        ax.bar(x + (i - (n - 1) / 2) * width, v, width, yerr=err, capsize=2, label=lab)
    ax.set_xticks(x, groups, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    if n > 1:
        ax.legend(fontsize=8, ncol=min(n, 4))
    return _save(fig, path)


def image_grid(tiles: Sequence[tuple[np.ndarray, str]], path: Path, cols: int = 4, title: str = "") -> Path:
    """A grid of RGB images with captions (e.g. missed faces with their boxes drawn)."""
    plt = pyplot()
    rows = max(1, -(-len(tiles) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, cap) in zip(axes.ravel(), tiles):
        ax.imshow(img)
        ax.set_title(cap, fontsize=7)
    if title:
        fig.suptitle(title, y=1.02)
    return _save(fig, path)
