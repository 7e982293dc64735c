"""Playground figures and markup: pure functions (no Streamlit), so tests can call them directly."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from engine.core.formatting import format_probability

# A decimal written out in full, as the explanation's value column holds it ("1.5150000000000001");
# integers and category codes such as "007" are left as they are.
_DECIMAL = re.compile(r"-?\d+\.\d+(?:[eE][+-]?\d+)?")


def _short(value: object) -> str:
    """A feature value for an axis label: 1.515 rather than 1.5150000000000001 (the value may
    come as a float or as the text of one)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return f"{float(text):.4g}" if _DECIMAL.fullmatch(text.strip()) else text


# Green: pushed the explained output up; red: pulled it down (the same in light and dark mode).
UP_RGB = (33, 195, 84)
DOWN_RGB = (255, 75, 75)
MAX_BARS = 20


def _compact(fig: go.Figure, x_title: str, n_bars: int) -> go.Figure:
    fig.update_layout(
        xaxis_title=x_title,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        height=max(160, 28 * n_bars + 60),
        showlegend=False,
    )
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def probability_bars(classes: Sequence[str], probabilities: Sequence[float]) -> go.Figure:
    """One horizontal bar per class, most likely first."""
    frame = pd.DataFrame({"class": [str(c) for c in classes], "p": list(probabilities)})
    frame = frame.sort_values("p", ascending=False, kind="stable").head(MAX_BARS)
    shown = [format_probability(p) for p in frame["p"]]  # "99.7 %", "< 0.1 %"
    fig = go.Figure(
        go.Bar(
            x=frame["p"].tolist(),
            y=frame["class"].tolist(),
            orientation="h",
            text=shown,
            customdata=shown,
            textposition="auto",
            hovertemplate="%{y}: %{customdata}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return _compact(fig, "probability", len(frame))


def contribution_bars(contributions: pd.DataFrame, target: str) -> go.Figure:
    """Feature contributions (feature, value, contribution), largest effect first."""
    shown = contributions.head(MAX_BARS)
    colors = [f"rgb{UP_RGB}" if c >= 0 else f"rgb{DOWN_RGB}" for c in shown["contribution"]]
    fig = go.Figure(
        go.Bar(
            x=shown["contribution"].tolist(),
            y=[f"{f} = {_short(v)}" for f, v in zip(shown["feature"], shown["value"], strict=True)],
            orientation="h",
            marker_color=colors,
            hovertemplate="%{y}: %{x:+.4g}<extra></extra>",
        )
    )
    return _compact(fig, f"change of {target}", len(shown))


def probability_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A prediction table for reading: its `p(class)` columns as "99.7 %" / "< 0.1 %" text (the
    download keeps the numbers)."""
    shown = frame.copy()
    for column in shown.columns:
        if str(column).startswith("p(") or ": p(" in str(column):  # A/B: "A: p(setosa)"
            shown[column] = [format_probability(float(p)) for p in shown[column]]
    return shown


def token_html(tokens: Sequence[str], scores: Sequence[float], unknown: Sequence[bool]) -> str:
    """The tokens as inline spans shaded by score (green up, red down); every token is escaped,
    so text typed by a user can never become markup."""
    peak = max((abs(s) for s in scores), default=0.0) or 1.0
    spans = []
    for token, score, unk in zip(tokens, scores, unknown, strict=True):
        rgb = UP_RGB if score >= 0 else DOWN_RGB
        alpha = round(min(1.0, abs(score) / peak) * 0.75, 3)
        title = f"{score:+.4f}" + (" (not in the vocabulary: read as unknown)" if unk else "")
        style = f"background-color: rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha}); "
        style += "padding: 1px 3px; margin: 1px; border-radius: 4px; display: inline-block;"
        if unk:
            style += " text-decoration: underline dotted;"
        spans.append(
            f'<span style="{style}" title="{html.escape(title)}">{html.escape(token)}</span>'
        )
    return f'<div style="line-height: 2;">{" ".join(spans)}</div>'


def token_table(tokens: Sequence[str], scores: Sequence[float]) -> pd.DataFrame:
    """The same scores as a table, strongest first (for reading exact values)."""
    frame = pd.DataFrame({"token": list(tokens), "score": list(scores)})
    order = frame["score"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)
