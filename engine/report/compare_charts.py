"""Pure builders for the Compare page: downsampling, smoothing, overlaid curves, tables of
params and metrics, parallel coordinates and a param-vs-metric scatter. No Streamlit here."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from db.records import RunRecord
from engine.core.catalog import metric_label
from engine.core.metric_info import direction, lower_is_better
from engine.report.charts import epoch_axis, with_epochs

# Sized to the chart: Compare's plot area is about 1,000 px wide in a 1,280-px window (the
# page is laid out wide). One trace gets up to a min/max pair per two pixel columns, which
# draws nearly the same line as every point would.
PLOT_WIDTH_PX = 1000
MAX_POINTS_PER_TRACE = PLOT_WIDTH_PX
# Points one Compare chart draws in all: past 30 runs each run gets fewer (never under 200):
# 100 overlaid lines are no sharper at 500 points each than at 300 (a pair per ~7 px), and the
# page sends a third of the bytes (1.2 MB → 0.38 MB with single precision; Plotly's drawing,
# mostly a cost per trace, ~20 % less).
MAX_POINTS_PER_CHART = 30 * PLOT_WIDTH_PX
MIN_POINTS_PER_TRACE = 200
# Above this many runs Plotly's legend would cover the chart: the page's run table is the key.
LEGEND_MAX_RUNS = 20
# Plotly's 24-colour qualitative palette: one colour per run, the same in the chart and the
# run table; past 24 runs colours repeat and the hover names the run.
PALETTE = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038",
)  # fmt: skip


def plotly_text(text: str) -> str:
    """User text for a Plotly label: Plotly renders a few HTML tags (<a href>, <b>, <br>) in
    names and hover text; entities it shows as the characters they stand for."""
    return html.escape(str(text), quote=False)


# "step" draws against epochs (engine/core/epochs.py; the key stays for saved Compare links).
X_AXES = {"step": "epoch", "wall_time": "wall time (s since the run's first point)"}


def points_per_run(n_runs: int) -> int:
    """How many points each of `n_runs` overlaid series is drawn with."""
    share = MAX_POINTS_PER_CHART // max(n_runs, 1)
    return max(MIN_POINTS_PER_TRACE, min(MAX_POINTS_PER_TRACE, share))


def run_colours(run_ids: Sequence[int]) -> dict[int, str]:
    """One palette colour per run, in the given order."""
    return {run_id: PALETTE[i % len(PALETTE)] for i, run_id in enumerate(run_ids)}


def minmax_indices(y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` points that keep the shape of a long series: the first
    and last point, and the minimum and maximum of each of (max_points - 2) // 2 equal buckets
    (so the global minimum and maximum always survive, which evenly spaced picks can miss)."""
    n = len(y)
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4; got {max_points}")
    if n <= max_points:
        return np.arange(n)
    buckets = (max_points - 2) // 2
    bucket = (np.arange(n) * buckets) // n
    # Sort by (bucket, value): each bucket's first entry is its minimum, its last its maximum.
    order = np.lexsort((y, bucket))
    starts = np.searchsorted(bucket[order], np.arange(buckets), side="left")
    ends = np.searchsorted(bucket[order], np.arange(buckets), side="right") - 1
    keep = np.concatenate(([0, n - 1], order[starts], order[ends]))
    return np.unique(keep)


def downsample_xy(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite values (NaN cannot be drawn), then keep first/last/min/max per bucket."""
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    index = minmax_indices(y, max_points)
    return x[index], y[index]


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _compact(values: np.ndarray) -> np.ndarray:
    """Single precision where it holds the values (a diverged loss of 1e40 would become inf)."""
    if len(values) and float(np.abs(values).max()) >= _FLOAT32_MAX:
        return values
    return values.astype(np.float32)


def ema_smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so the curve starts at
    the first value instead of at zero. weight 0 = raw values, 0.99 = very smooth."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1); got {weight}")
    values = np.asarray(values, dtype=float)
    if weight == 0 or len(values) == 0:
        return values
    out = np.empty_like(values)
    last, n = 0.0, 0
    for i, v in enumerate(values):
        if not np.isfinite(v):
            out[i] = v
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out[i] = last / (1 - weight**n)
    return out


def compare_curves(
    history: pd.DataFrame,
    key: str,
    *,
    run_labels: Mapping[int, str],
    x_axis: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int | None = None,
) -> go.Figure:
    """One line per run for one metric, coloured as `run_colours`; smoothed on the points given
    (all of them when smoothing), then downsampled to `max_points` per run (default
    `points_per_run`). Fetch the `epoch` key too: on the "step" axis points sit at their epoch.

    SVG lines, not WebGL (Scattergl): in headless Chromium (software WebGL) on the 2-core bench
    machine, plotly.js drew 100 WebGL traces of 1,000 points in 3.5 s and the same as SVG in
    0.6 s; 100 × 300 points again (load ~13): WebGL 4.2–8.2 s, SVG 0.9–1.0 s."""
    max_points = max_points or points_per_run(len(run_labels))
    if x_axis not in X_AXES:
        raise ValueError(f"x axis must be one of {', '.join(X_AXES)}; got {x_axis!r}")
    if x_axis == "step" and not history.empty:
        history = with_epochs(history)  # on the "step" axis points are drawn at their epoch
    rows = history[history["key"] == key] if not history.empty else history
    x_column = "epoch" if x_axis == "step" and not history.empty else x_axis
    x_max = 0.0
    # One pass to split the runs apart: a mask per run costs runs × rows.
    by_run = {int(run_id): part for run_id, part in rows.groupby("run_id", sort=False)}
    colours = run_colours(list(run_labels))
    traces = []
    for run_id, label in run_labels.items():
        series = by_run.get(run_id)
        if series is None or series.empty:
            continue
        if not series["step"].is_monotonic_increasing:
            series = series.sort_values("step")
        y = ema_smooth(series["value"].to_numpy(dtype=float), smoothing)
        x = series[x_column].to_numpy(dtype=float)
        if x_axis == "wall_time":
            x = x - x[0]
        x, y = downsample_xy(x, y, max_points)
        x_max = max(x_max, float(x.max())) if len(x) else x_max
        traces.append(
            {
                "type": "scatter",
                # Arrays, not lists: Plotly sends them as binary (base64); single precision
                # (7 digits, hover shows 4) halves that again.
                "x": _compact(x),
                "y": _compact(y),
                "mode": "lines",
                "name": plotly_text(label),
                "line": {"color": colours[run_id], "width": 1.5},
                # The name by reference: a run named "%{y}" must not become a template.
                "hovertemplate": "%{fullData.name}<br>%{x}: %{y:.4g}<extra></extra>",
            }
        )
    return curves_figure(
        traces, key, x_axis, x_max, log_y=log_y, showlegend=len(run_labels) <= LEGEND_MAX_RUNS
    )


def curves_figure(
    traces: list[dict[str, Any]],
    key: str,
    x_axis: str,
    x_max: float,
    *,
    log_y: bool = False,
    **layout: Any,  # noqa: ANN401
) -> go.Figure:
    """Compare's figure of overlaid curves (of runs, or of groups: compare_groups.py)."""
    # All traces at once, as plain dicts: add_trace re-validates the figure on every call, and a
    # go.Scatter is validated again when the figure takes it (100 runs: 4x the time).
    fig = go.Figure(data=traces)
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_layout(
        xaxis_title=X_AXES[x_axis],
        yaxis_title=metric_label(key),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        hovermode="closest",
        **layout,
    )
    return epoch_axis(fig, x_max) if x_axis == "step" else fig


def runs_legend(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """The key to the curves: one row per run with its colour, name, dataset and status."""
    colours = run_colours([r.id for r in runs])
    return pd.DataFrame(
        {
            "colour": [colours[r.id] for r in runs],
            "run": [f"#{r.id} {r.name}" for r in runs],
            "dataset": [r.dataset_name for r in runs],
            "status": [r.status for r in runs],
        }
    )


def dataset_warning(runs: Sequence[RunRecord]) -> str | None:
    """A sentence when the runs were trained on more than one dataset (None when on one):
    their scores come from different test rows, so ranking them says little."""
    counts = pd.Series([r.dataset_name for r in runs]).value_counts()
    if len(counts) < 2:
        return version_warning(runs)
    shown = [f"{name} ({n} run{'s' if n != 1 else ''})" for name, n in counts.items()]
    if len(shown) > 6:
        shown = [*shown[:5], f"{len(shown) - 5} more"]
    return (
        f"These runs were trained on {len(counts)} different datasets: {', '.join(shown)}. "
        "Their scores come from different test rows, so a higher number does not mean a better "
        "model; compare runs of one dataset to rank them."
    )


def version_warning(runs: Sequence[RunRecord]) -> str | None:
    """A sentence when runs of one dataset trained on different versions of it (None when on
    one): their data differ (relabelled or excluded rows), so their test rows may too."""
    names = {r.dataset_name for r in runs if r.dataset_name is not None}
    if len(names) != 1:
        return None
    counts = pd.Series([r.dataset_version or 1 for r in runs if r.dataset_name]).value_counts()
    if len(counts) < 2:
        return None
    shown = ", ".join(
        f"version {n} ({k} run{'s' if k != 1 else ''})" for n, k in sorted(counts.items())
    )
    return (
        f"These runs used different versions of dataset {names.pop()}: {shown}. The versions "
        "differ in labels or rows, so their test rows may differ too; the difference in "
        "scores is partly the data's."
    )


def _param_text(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def params_table(runs: Sequence[RunRecord], only_differences: bool = False) -> pd.DataFrame:
    """One row per run: id, name, dataset and every config field; with `only_differences`
    only the fields whose values are not all equal."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"id": run.id, "name": run.name, "dataset": run.dataset_name}
        row.update({k: _param_text(v) for k, v in sorted(run.config.items())})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if only_differences and len(frame) > 1:
        fixed = ["id", "name"]
        varying = [
            c for c in frame.columns if c not in fixed and frame[c].astype(str).nunique() > 1
        ]
        frame = frame[fixed + varying]
    return frame


def metrics_table(runs: Sequence[RunRecord], keys: Sequence[str]) -> pd.DataFrame:
    """One row per run: the last value of each metric key (None where the run lacks it)."""
    return pd.DataFrame(
        [{"id": r.id, "name": r.name, **{k: r.last(k) for k in keys}} for r in runs],
        columns=["id", "name", *keys],
    )


def best_runs(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per metric with a direction: the best value among the runs and which run has it (the
    lowest loss or error, the highest accuracy…). A learning rate or an epoch's duration has
    no best, so it is left out."""
    rows = []
    for key in keys:
        way = direction(key)
        values = pd.to_numeric(table[key], errors="coerce")
        if way is None or values.notna().sum() == 0:
            continue
        best = values.idxmin() if way == "lower" else values.idxmax()
        rows.append(
            {
                "metric": key,
                "best": float(values[best]),
                "run": f"#{table.at[best, 'id']} {table.at[best, 'name']}",
                "direction": f"{way} is better",
            }
        )
    return pd.DataFrame(rows, columns=["metric", "best", "run", "direction"])


def _dimension(label: str, values: pd.Series) -> dict[str, Any]:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return {"label": label, "values": numeric.tolist()}
    # Categories (optimizer, a list of sizes) become evenly spaced ticks named by their value.
    text = values.astype(str)
    categories = sorted(text.unique())
    codes = text.map({c: i for i, c in enumerate(categories)})
    return {
        "label": label,
        "values": codes.tolist(),
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def parallel_coordinates(params: pd.DataFrame, metrics: pd.DataFrame, key: str) -> go.Figure:
    """One axis per varying param and a last axis for the metric; lines coloured by it."""
    merged = params.merge(metrics[["id", key]], on="id")
    merged = merged[pd.to_numeric(merged[key], errors="coerce").notna()]
    axes = [c for c in params.columns if c not in ("id", "name")]
    dimensions = [_dimension(c, merged[c]) for c in axes]
    dimensions.append(_dimension(metric_label(key), merged[key]))
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": pd.to_numeric(merged[key]).tolist(),
                "colorscale": "Viridis",
                "reversescale": lower_is_better(key),
                "showscale": True,
            },
            dimensions=dimensions,
        )
    )
    fig.update_layout(margin={"l": 60, "r": 60, "t": 50, "b": 20})
    return fig


def param_scatter(
    params: pd.DataFrame, metrics: pd.DataFrame, param: str, key: str, log_x: bool = False
) -> go.Figure:
    """One point per run: a param on x, a metric's last value on y, the run on hover."""
    merged = params[["id", "name", param]].merge(metrics[["id", key]], on="id")
    fig = go.Figure(
        go.Scatter(
            x=merged[param].tolist(),
            y=merged[key].tolist(),
            mode="markers",
            text=[
                plotly_text(f"#{i} {n}") for i, n in zip(merged["id"], merged["name"], strict=True)
            ],
            hovertemplate="%{text}<br>" + param + ": %{x}<br>%{y:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(type="log" if log_x else "-")
    fig.update_layout(
        xaxis_title=param,
        yaxis_title=metric_label(key),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        hovermode="closest",
    )
    return fig
