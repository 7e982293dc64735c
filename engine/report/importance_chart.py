"""Permutation feature importance (report["importance"], engine/ml/importance.py) as a figure:
shared by the Run page's Evaluation tab and the HTML report (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

MAX_BARS = 30


def importance_bars(importance: Mapping[str, Any], max_bars: int = MAX_BARS) -> go.Figure:
    """Horizontal bars, most important column on top, with the spread over repeats."""
    features = list(importance.get("features") or [])[:max_bars]
    metric = str(importance.get("metric", "score"))
    change = "drop" if importance.get("higher_is_better", True) else "rise"
    names = [str(f["name"]) for f in features]
    fig = go.Figure(
        go.Bar(
            x=[float(f["importance"]) for f in features],
            y=names,
            orientation="h",
            error_x={"type": "data", "array": [float(f.get("std", 0.0)) for f in features]},
            hovertemplate=f"%{{y}}: {metric} {change} %{{x:.4f}}<extra></extra>",
        )
    )
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(
        xaxis_title=f"{metric} {change} when the column is shuffled",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=max(220, 40 + 26 * len(features)),
        hovermode="closest",
    )
    return fig


def caption(importance: Mapping[str, Any]) -> str:
    return (
        f"Permutation importance on {int(importance.get('n_rows', 0)):,} test rows, "
        f"{int(importance.get('n_repeats', 0))} shuffle(s) per column, scored with "
        f"{importance.get('metric')} (baseline {float(importance.get('baseline', 0.0)):.4f}). "
        "Near 0: the model does not rely on the column; below 0: noise."
    )
