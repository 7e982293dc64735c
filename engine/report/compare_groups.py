"""Compare's groups: the runs that share the value of one param (the seed, the model, the
dataset version…) drawn and summarised as one. A group's curve is the mean of its runs with a
band of ±1 standard deviation; its metrics are the mean ± standard deviation over its runs,
with how many runs there are. Pure builders: no Streamlit here.

The standard deviation is the sample one (n − 1), as a spread over seeds is usually reported;
a group of one run has none (shown as a dash, drawn without a band).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from db.records import RunRecord
from engine.core.catalog import metric_label
from engine.report.charts import with_epochs
from engine.report.compare_charts import (
    PALETTE,
    X_AXES,
    curves_figure,
    params_table,
    plotly_text,
)

# The common x grid a group's curves are averaged on: the runs of a group rarely log at the
# same steps (another batch size, a resumed run), so each is read off the grid by
# interpolation within its own range.
GROUP_POINTS = 200
# What a group is named by when the param is the dataset's version (not a config field).
DATASET_VERSION = "dataset version"
NO_VALUE = "(not set)"


def group_options(runs: Sequence[RunRecord]) -> list[str]:
    """The params whose values differ between these runs (grouping by one that does not would
    make one group of every run), the dataset's version among them."""
    varying = params_table(runs, only_differences=True)
    options = [c for c in varying.columns if c not in ("id", "name")]
    if len({r.dataset_version or 1 for r in runs}) > 1:
        options.append(DATASET_VERSION)
    return options


def group_values(runs: Sequence[RunRecord], param: str) -> dict[int, str]:
    """Each run's group: its value of `param`, as text."""
    if param == DATASET_VERSION:
        return {r.id: f"{r.dataset_name} v{r.dataset_version or 1}" for r in runs}
    table = params_table(runs).set_index("id")
    if param not in table.columns:
        raise ValueError(f"no param {param!r} to group by; one of {', '.join(table.columns)}")
    return {
        int(run_id): NO_VALUE if value is None or value != value else str(value)
        for run_id, value in table[param].items()
    }


def groups_of(values: Mapping[int, str]) -> dict[str, list[int]]:
    """Group → its run ids, groups in order of their first run."""
    out: dict[str, list[int]] = {}
    for run_id, value in values.items():
        out.setdefault(value, []).append(run_id)
    return out


def group_metrics(
    runs: Sequence[RunRecord], keys: Sequence[str], values: Mapping[int, str]
) -> pd.DataFrame:
    """One row per group: its value, how many runs, and per metric key the mean and the sample
    standard deviation of the runs' last values (`KEY mean`, `KEY std`; runs without the key
    are left out of its figures)."""
    by_id = {r.id: r for r in runs}
    rows = []
    for value, ids in groups_of(values).items():
        row: dict[str, Any] = {"group": value, "runs": len(ids)}
        for key in keys:
            found = [by_id[i].last(key) for i in ids]
            numbers = np.array([v for v in found if v is not None], dtype=float)
            numbers = numbers[np.isfinite(numbers)]
            row[f"{key} mean"] = float(numbers.mean()) if len(numbers) else None
            row[f"{key} std"] = float(numbers.std(ddof=1)) if len(numbers) > 1 else None
        rows.append(row)
    columns = ["group", "runs"] + [f"{k} {s}" for k in keys for s in ("mean", "std")]
    return pd.DataFrame(rows, columns=columns)


def shown_group_metrics(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """`group_metrics` for reading: one "mean ± std" column per key (4 significant digits)."""

    def text(mean: Any, std: Any) -> str:  # noqa: ANN401
        if mean is None or pd.isna(mean):
            return "–"
        return f"{mean:.4g}" if std is None or pd.isna(std) else f"{mean:.4g} ± {std:.2g}"

    out = table[["group", "runs"]].copy()
    for key in keys:
        out[metric_label(key)] = [
            text(m, s) for m, s in zip(table[f"{key} mean"], table[f"{key} std"], strict=True)
        ]
    return out


def mean_band(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = GROUP_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(grid, mean, sample std, runs counted) of several (x, y) curves on a common grid over
    their whole x range; each curve counts only within its own range, so a shorter run does
    not drag the mean towards its last value."""
    finite = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in curves]
    finite = [(x, y) for x, y in finite if len(x)]
    if not finite:
        empty = np.array([], dtype=float)
        return empty, empty, empty, empty
    low = min(float(x.min()) for x, _ in finite)
    high = max(float(x.max()) for x, _ in finite)
    grid = np.linspace(low, high, points) if high > low else np.array([low])
    stack = np.full((len(finite), len(grid)), np.nan)
    for row, (x, y) in enumerate(finite):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        inside = (grid >= x[0]) & (grid <= x[-1])
        stack[row, inside] = np.interp(grid[inside], x, y)
    counted = np.isfinite(stack).sum(axis=0)
    keep = counted > 0
    grid, stack, counted = grid[keep], stack[:, keep], counted[keep]
    mean = np.nanmean(stack, axis=0)
    spread = np.zeros_like(mean)
    several = counted > 1
    spread[several] = np.nanstd(stack[:, several], axis=0, ddof=1)
    return grid, mean, spread, counted


def _fill(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.18)"


def group_curves(
    history: pd.DataFrame,
    key: str,
    values: Mapping[int, str],
    *,
    param: str,
    x_axis: str = "step",
    log_y: bool = False,
) -> go.Figure:
    """One mean line per group for one metric, with a ±1 standard deviation band where the
    group has two or more runs. Fetch the `epoch` key too: on the "step" axis points sit at
    their epoch (as on compare_curves)."""
    if x_axis not in X_AXES:
        raise ValueError(f"x axis must be one of {', '.join(X_AXES)}; got {x_axis!r}")
    if x_axis == "step" and not history.empty:
        history = with_epochs(history)
    rows = history[history["key"] == key] if not history.empty else history
    x_column = "epoch" if x_axis == "step" and not history.empty else x_axis
    by_run = {int(run_id): part for run_id, part in rows.groupby("run_id", sort=False)}
    traces: list[dict[str, Any]] = []
    x_max = 0.0
    for index, (value, ids) in enumerate(groups_of(values).items()):
        curves = []
        for run_id in ids:
            series = by_run.get(run_id)
            if series is None or series.empty:
                continue
            series = series.sort_values("step")
            x = series[x_column].to_numpy(dtype=float)
            if x_axis == "wall_time":
                x = x - x[0]
            curves.append((x, series["value"].to_numpy(dtype=float)))
        grid, mean, spread, counted = mean_band(curves)
        if not len(grid):
            continue
        x_max = max(x_max, float(grid.max()))
        colour = PALETTE[index % len(PALETTE)]
        name = plotly_text(
            f"{param} = {value} ({len(curves)} run{'s' if len(curves) != 1 else ''})"
        )
        if (counted > 1).any():
            band_x = np.concatenate([grid, grid[::-1]])
            band_y = np.concatenate([mean + spread, (mean - spread)[::-1]])
            traces.append(
                {
                    "type": "scatter",
                    "x": band_x,
                    "y": band_y,
                    "fill": "toself",
                    "fillcolor": _fill(colour),
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "legendgroup": str(index),
                }
            )
        traces.append(
            {
                "type": "scatter",
                "x": grid,
                "y": mean,
                "mode": "lines",
                "name": name,
                "legendgroup": str(index),
                "line": {"color": colour, "width": 2},
                "customdata": np.stack([spread, counted], axis=1),
                "hovertemplate": "%{fullData.name}<br>%{x}: %{y:.4g} ± %{customdata[0]:.2g}"
                " (%{customdata[1]} runs)<extra></extra>",
            }
        )
    return curves_figure(
        traces,
        key,
        x_axis,
        x_max,
        log_y=log_y,
        # Above the plot, not beside it: a panel half the page wide keeps its width.
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
