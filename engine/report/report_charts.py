"""Evaluation-report figures: pure functions from report.json parts to Plotly figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go


def _frame(fig: go.Figure, x_title: str, y_title: str, *, square: bool = False) -> go.Figure:
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hovermode="closest",
    )
    if square:
        fig.update_xaxes(range=[0, 1], constrain="domain")
        fig.update_yaxes(range=[0, 1.02], scaleanchor="x", scaleratio=1)
    return fig


def roc_curves(curves: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """One ROC line per class (one-vs-rest), with the chance diagonal."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "width": 1}, name="chance"
        )
    )
    for label, curve in curves.items():
        fig.add_trace(
            go.Scatter(
                x=curve["fpr"],
                y=curve["tpr"],
                mode="lines",
                name=f"{label} (AUC {curve['auc']:.3f})",
                hovertemplate="FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>",
            )
        )
    return _frame(fig, "false positive rate", "true positive rate", square=True)


def pr_curves(curves: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """One precision-recall line per class, labelled with its average precision."""
    fig = go.Figure()
    for label, curve in curves.items():
        fig.add_trace(
            go.Scatter(
                x=curve["recall"],
                y=curve["precision"],
                mode="lines",
                name=f"{label} (AP {curve['average_precision']:.3f})",
                hovertemplate="recall %{x:.3f}, precision %{y:.3f}<extra></extra>",
            )
        )
    return _frame(fig, "recall", "precision", square=True)


def per_class_bars(per_class: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """Precision, recall and F1 side by side for every class."""
    classes = [str(c) for c in per_class]
    fig = go.Figure()
    for score in ("precision", "recall", "f1"):
        fig.add_trace(
            go.Bar(
                x=classes,
                y=[float(per_class[c][score]) for c in per_class],
                name=score,
                hovertemplate=f"%{{x}}: {score} %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(barmode="group")
    return _frame(fig, "class", "score")


def predicted_vs_actual(true: Sequence[float], predicted: Sequence[float]) -> go.Figure:
    """Each test row as a point; the diagonal is a perfect prediction."""
    values = [v for v in [*true, *predicted] if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"dash": "dot"}, name="perfect")
    )
    fig.add_trace(
        go.Scatter(
            x=list(true),
            y=list(predicted),
            mode="markers",
            marker={"size": 6, "opacity": 0.6},
            name="test rows",
            hovertemplate="true %{x:.4g}, predicted %{y:.4g}<extra></extra>",
        )
    )
    return _frame(fig, "actual", "predicted")


def residuals(true: Sequence[float], predicted: Sequence[float]) -> go.Figure:
    """Residual (actual − predicted) against the prediction: patterns mean a missed signal."""
    t = np.asarray([np.nan if v is None else v for v in true], dtype=float)
    p = np.asarray([np.nan if v is None else v for v in predicted], dtype=float)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=p.tolist(),
            y=(t - p).tolist(),
            mode="markers",
            marker={"size": 6, "opacity": 0.6},
            name="test rows",
            hovertemplate="predicted %{x:.4g}, residual %{y:.4g}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line_dash="dot")
    return _frame(fig, "predicted", "residual (actual − predicted)")
