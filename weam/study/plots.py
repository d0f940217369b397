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
    """Grouped bars: one group per held-out language, one bar per condition, ± std over language sets.

    ``summary``: columns condition, target, mean, std (NaN std: one set, no bar).
    """
    conditions = sorted(summary["condition"].unique())
    langs = sorted(summary["target"].unique())
    width = 0.8 / max(len(conditions), 1)
    figure = Figure(figsize=(max(5.0, 1.2 * len(langs) + 2), 3.6))
    axes = figure.add_subplot()
    x = np.arange(len(langs))
    for i, condition in enumerate(conditions):
        part = summary[summary["condition"] == condition].set_index("target").reindex(langs)
        axes.bar(x + (i - (len(conditions) - 1) / 2) * width, part["mean"], width,
                 yerr=part["std"].fillna(0), capsize=3, label=condition)
    axes.set_xticks(x, [label(code) for code in langs])
    axes.set_ylabel("score (mean ± std over language sets)")
    axes.set_title(f"{title} per held-out language (* = low-resource)")
    axes.legend(fontsize="small")
    return _save(figure, path)


COLOURS = {"primary": "tab:blue", "secondary": "tab:orange", "described": "tab:gray"}


def difference_plot(endpoints: pd.DataFrame, path: Path, title: str) -> Path:
    """Forest plot: treatment − control per task, metric and group with its 95 % interval (the total effect, targets random)
    (described groups: the point only); colour by role (primary, secondary, described); zero line."""
    rows = endpoints.dropna(subset=["estimate"]).reset_index(drop=True)
    figure = Figure(figsize=(7.0, 0.45 * len(rows) + 1.4))
    axes = figure.add_subplot()
    y = np.arange(len(rows))[::-1]
    for row, level in zip(rows.itertuples(), y):
        colour = COLOURS.get(row.role, "black")
        if np.isnan(row.low):
            axes.plot(row.estimate, level, "o", color=colour, fillstyle="none")
        else:
            # A percentile interval need not contain the estimate: clip the bar lengths at 0.
            axes.errorbar(row.estimate, level, xerr=[[max(row.estimate - row.low, 0.0)],
                                                     [max(row.high - row.estimate, 0.0)]],
                          fmt="o", color=colour, capsize=3)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(y, [f"{r.task}/{r.metric}: {r.group} ({r.role})" for r in rows.itertuples()])
    axes.set_xlabel("treatment − control (95 % interval: total effect, targets random)")
    axes.set_title(title, fontsize="medium")
    return _save(figure, path)
