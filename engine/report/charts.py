"""Pure DataFrame → Plotly Figure builders; no Streamlit here, so tests can call them directly.

The figures carry no template or colours of their own: `st.plotly_chart` applies the Streamlit
theme, which keeps charts readable in both light and dark mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.core.catalog import metric_label
from engine.core.epochs import EPOCH_KEY, epoch_ticks, epochs_at

# The Run page draws its curves two abreast, each about 600 px wide in a 1,280-px window: 1,000
# points a trace is more than one a pixel. Plotly's drawing time grows with the points (2,000
# a trace: ~0.2 s more per visit on 2 cores), the extra ones invisible at that width.
MAX_POINTS_PER_TRACE = 1000


def downsample(frame: pd.DataFrame, max_points: int = MAX_POINTS_PER_TRACE) -> pd.DataFrame:
    """Evenly spaced rows, always keeping the first and the last (the latest value matters most)."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2; got {max_points}")
    if len(frame) <= max_points:
        return frame
    index = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[index]


def _layout(fig: go.Figure, *, title: str | None, x_title: str, y_title: str) -> go.Figure:
    # The legend goes where nothing else is: top left under no title (Plotly's hover toolbar
    # owns the top right), below the axis when there is a title.
    if title:
        legend = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}
        margin = {"l": 10, "r": 10, "t": 40, "b": 70}
    else:
        legend = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}
        margin = {"l": 10, "r": 10, "t": 40, "b": 10}
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin=margin,
        legend=legend,
        hovermode="x unified",
    )
    return fig


def with_epochs(history: pd.DataFrame) -> pd.DataFrame:
    """`history` (run_id, key, step, value, …) with an `epoch` column: each point's epoch from
    its run's `epoch` series (engine/core/epochs.py), the step itself for runs without one."""
    out = history.copy()
    out["epoch"] = out["step"].astype(float)
    marks = out[out["key"] == EPOCH_KEY]
    for run_id, run_marks in marks.groupby("run_id"):
        mine = out["run_id"] == run_id
        out.loc[mine, "epoch"] = epochs_at(
            out.loc[mine, "step"].to_numpy(dtype=float),
            run_marks["step"].to_numpy(dtype=float),
            run_marks["value"].to_numpy(dtype=float),
        )
    return out


def epoch_axis(fig: go.Figure, x_max: float) -> go.Figure:
    """An x axis in epochs with whole-number ticks (never "1.5"), at least one epoch wide so a
    run in its first epoch shows where that epoch ends."""
    dtick = epoch_ticks(x_max)
    fig.update_xaxes(tick0=0, dtick=dtick, tickformat=",d")
    if not x_max or x_max < 1:
        fig.update_xaxes(range=[0, 1])
    return fig


def metric_curves(
    history: pd.DataFrame,
    keys: Sequence[str],
    *,
    run_labels: Mapping[int, str] | None = None,
    title: str | None = None,
    max_points: int = MAX_POINTS_PER_TRACE,
) -> go.Figure:
    """Lines of metric value over epochs from `metric_history` output (run_id, key, step,
    value); fetch the `epoch` key too so points within an epoch sit where they belong.

    One trace per key when the frame holds one run; one trace per (run, key) otherwise, named
    by `run_labels` so a comparison legend reads as run names.
    """
    fig = go.Figure()
    if history.empty:
        return _layout(fig, title=title, x_title="epoch", y_title="value")
    rows = with_epochs(history)
    x_max = float(rows["epoch"].max()) if not rows.empty else 0.0
    rows = rows[rows["key"].isin(list(keys))]
    run_ids = list(dict.fromkeys(rows["run_id"].tolist()))
    several_runs = len(run_ids) > 1
    for run_id in run_ids:
        for key in keys:
            series = rows[(rows["run_id"] == run_id) & (rows["key"] == key)].sort_values("step")
            if series.empty:
                continue
            series = downsample(series, max_points)
            label = metric_label(key)
            if several_runs:
                run_name = (run_labels or {}).get(run_id, f"run {run_id}")
                label = f"{run_name} · {label}" if len(keys) > 1 else run_name
            fig.add_trace(
                go.Scatter(
                    x=series["epoch"].tolist(),
                    y=series["value"].tolist(),
                    mode="lines+markers" if len(series) <= 60 else "lines",
                    name=label,
                )
            )
    y_title = metric_label(keys[0]) if len(keys) == 1 else "value"
    return epoch_axis(_layout(fig, title=title, x_title="epoch", y_title=y_title), x_max)


def class_balance(class_counts: Mapping[str, int], *, title: str | None = None) -> go.Figure:
    """Bar per class with its row count, in the order given (the dataset's class order)."""
    classes = [str(c) for c in class_counts]
    counts = [int(v) for v in class_counts.values()]
    total = sum(counts) or 1
    fig = go.Figure(
        go.Bar(
            x=classes,
            y=counts,
            text=[f"{c:,} ({c / total:.0%})" for c in counts],
            textposition="auto",
            hovertemplate="%{x}: %{y:,} rows<extra></extra>",
        )
    )
    # Category axis: class labels such as "0", "1" must not become a numeric axis.
    fig.update_xaxes(type="category")
    fig.update_layout(hovermode="closest")
    return _layout(fig, title=title, x_title="class", y_title="rows")


def target_histogram(values: pd.Series, *, name: str, bins: int = 40) -> go.Figure:
    """Distribution of a numeric (regression) target.

    Binned here rather than by Plotly in the browser, so a million-row target sends 40 bars,
    not a million numbers, to the page.
    """
    present = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype="float64")
    fig = go.Figure()
    if present.size:
        counts, edges = np.histogram(present, bins=bins)
        centers = (edges[:-1] + edges[1:]) / 2
        fig.add_trace(
            go.Bar(
                x=centers.tolist(),
                y=counts.tolist(),
                width=float(edges[1] - edges[0]) if len(edges) > 1 else None,
                customdata=np.column_stack([edges[:-1], edges[1:]]).tolist(),
                hovertemplate="%{customdata[0]:.4g} – %{customdata[1]:.4g}: %{y:,} rows"
                "<extra></extra>",
                name=name,
            )
        )
    fig.update_layout(hovermode="closest", bargap=0.05)
    return _layout(fig, title=None, x_title=name, y_title="rows")


def confusion_matrix(
    matrix: Sequence[Sequence[float]], classes: Sequence[str], *, normalize: bool = False
) -> go.Figure:
    """Heatmap with true class on y (top to bottom) and predicted class on x, counts in cells."""
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(classes):
        raise ValueError(
            f"confusion matrix must be square with one row per class ({len(classes)}); "
            f"got shape {counts.shape}"
        )
    shown = counts
    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    labels = [str(c) for c in classes]
    text = [[f"{v:.0%}" if normalize else f"{int(v):,}" for v in row] for row in shown]
    fig = go.Figure(
        go.Heatmap(
            z=shown.tolist(),
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            # Stops at a mid blue so the dark cell labels stay readable on the fullest cells.
            colorscale=[[0.0, "#f4f8fd"], [1.0, "#5b9bd5"]],
            showscale=False,
            hovertemplate="true %{y} → predicted %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", side="bottom")
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(hovermode="closest")
    return _layout(fig, title=None, x_title="predicted", y_title="true")


# The run's system metrics (engine/execution/system_metrics.py), two charts by unit.
SYSTEM_CHARTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "Processor",
        "%",
        {"sys/cpu_percent": "CPU % (100 = one core)", "sys/gpu_util_percent": "GPU utilisation %"},
    ),
    ("Memory", "MB", {"sys/rss_mb": "Resident memory (MB)", "sys/gpu_mem_mb": "GPU memory (MB)"}),
)


def system_curves(history: pd.DataFrame) -> list[tuple[str, go.Figure]]:
    """(title, figure) for each unit the run has `sys/…` points of, over seconds since the run
    was created (their step); [] when it has none."""
    figures = []
    for title, unit, labels in SYSTEM_CHARTS:
        rows = history[history["key"].isin(list(labels))]
        if rows.empty:
            continue
        fig = go.Figure()
        for key, label in labels.items():
            series = downsample(rows[rows["key"] == key].sort_values("step"))
            if not series.empty:
                fig.add_trace(go.Scatter(x=series["step"], y=series["value"], name=label))
        figures.append((title, _layout(fig, title=None, x_title="seconds", y_title=unit)))
    return figures
