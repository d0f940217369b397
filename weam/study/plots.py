"""The report's PNG plots (matplotlib's object API with the Agg canvas: no pyplot global state)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def language_plot(summary: pd.DataFrame, path: Path, title: str, label: Callable[[str], str] = str) -> Path:
    """Grouped bars: one group per held-out language, one bar per condition, ± std over seeds."""
    conditions = sorted(summary["condition"].unique())
    langs = sorted(summary["lang"].unique())
    width = 0.8 / max(len(conditions), 1)
    figure = Figure(figsize=(max(5.0, 1.2 * len(langs) + 2), 3.6))
    axes = figure.add_subplot()
    x = np.arange(len(langs))
    for i, condition in enumerate(conditions):
        part = summary[summary["condition"] == condition].set_index("lang").reindex(langs)
        axes.bar(x + (i - (len(conditions) - 1) / 2) * width, part["value mean"], width,
                 yerr=part["value std"].fillna(0), capsize=3, label=condition)
    axes.set_xticks(x, [label(code) for code in langs])
    axes.set_ylabel("score (mean ± std over seeds)")
    axes.set_title(f"{title} per held-out language (* = low-resource)")
    axes.legend(fontsize="small")
    return _save(figure, path)


def difference_plot(diffs: pd.DataFrame, path: Path, title: str) -> Path:
    """Forest plot: treatment − control per language group with its 95 % CI; a line at zero."""
    rows = diffs.dropna(subset=["diff"]).reset_index(drop=True)
    figure = Figure(figsize=(6.5, 0.45 * len(rows) + 1.4))
    axes = figure.add_subplot()
    y = np.arange(len(rows))[::-1]
    for row, level in zip(rows.itertuples(), y):
        color = "tab:green" if row.significant else "tab:gray"
        axes.errorbar(row.diff, level, xerr=[[row.diff - row.low], [row.high - row.diff]], fmt="o",
                      color=color, capsize=3)
    axes.axvline(0, color="black", linewidth=0.8)
    labels = [g if u == "seed × language" else f"{g} (seed means)" for g, u in zip(rows["group"], rows["unit"])]
    axes.set_yticks(y, labels)
    axes.set_xlabel("treatment − control (95 % CI; green: excludes 0)")
    axes.set_title(title, fontsize="medium")
    return _save(figure, path)
