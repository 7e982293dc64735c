"""What the Playground shows for one model and one input: the prediction, the class
probabilities, why (an explanation), and the model's test metrics for context."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components.playground_model import LoadedModel, test_metrics
from engine.core.catalog import metric_label
from engine.core.formatting import format_metric, format_probability, format_value
from engine.ml import explain
from engine.ml.predictor import PredictorError
from engine.report import playground_charts


def _probability_of(frame: pd.DataFrame, label: str) -> float:
    return float(frame[f"p({label})"].iloc[0])


def show_metrics(run_id: int) -> None:
    metrics = test_metrics(run_id)
    if not metrics:
        st.caption("No test metrics: the run's report.json is missing.")
        return
    shown = list(metrics.items())[:4]
    for column, (name, value) in zip(st.columns(len(shown)), shown, strict=True):
        column.metric(metric_label(name), format_metric(name, value))
    st.caption("On the run's held-out test split.")


def show_prediction(loaded: LoadedModel, inputs: Any, key: str) -> None:  # noqa: ANN401
    """Predict, draw and explain; a PredictorError becomes one sentence on the page."""
    predictor = loaded.predictor
    try:
        with loaded.lock:
            frame = predictor.predict(inputs if predictor.kind != "image" else [inputs])
            explained = explain.explain(predictor, inputs)
    except PredictorError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    prediction = frame["prediction"].iloc[0]
    if predictor.task == "classification":
        st.metric(
            "Prediction",
            data.md_text(str(prediction)),
            help="The most likely class.",
        )
        st.caption(f"{format_probability(_probability_of(frame, str(prediction)))} sure")
        st.plotly_chart(
            playground_charts.probability_bars(
                predictor.classes, frame.filter(like="p(").iloc[0].tolist()
            ),
            key=f"{key}:probabilities",
        )
    else:
        st.metric(data.md_text(predictor.target_column), format_value(float(prediction)))
    st.markdown("**Why**")
    _show_explanation(explained, inputs, key)


def _reading(explained: explain.Explanation, reference: str) -> str:
    target = data.md_text(explained.target)
    # A classifier's explained output is a probability: "99.7 %", never "3.34e-15".
    shown = format_probability if explained.target.startswith("p(") else format_value
    return (
        f"{target} is {shown(explained.output)}; for {reference} it is "
        f"{shown(explained.reference_output)}."
    )


def _show_explanation(explained: explain.Explanation, inputs: Any, key: str) -> None:  # noqa: ANN401
    target = data.md_text(explained.target)
    if explained.kind == "tabular" and explained.contributions is not None:
        st.plotly_chart(
            playground_charts.contribution_bars(explained.contributions, explained.target),
            key=f"{key}:contributions",
        )
        st.caption(
            _reading(explained, "a typical row (training medians, most frequent categories)")
            + f" Each bar is how much that value moved {target} from there "
            "(green up, red down)."
        )
        if explained.contributions["contribution"].abs().max() < 1e-6:
            st.info(
                "These inputs are the typical row itself, so nothing moved the prediction yet: "
                "change a value above to see what matters.",
                icon=":material/touch_app:",
            )
    elif explained.kind == "text":
        st.html(playground_charts.token_html(explained.tokens, explained.scores, explained.unknown))
        caption = _reading(explained, "a text with no words") + (
            f" Green words pushed {target} up, red ones down; dotted underline: a word the "
            "model never saw in training."
        )
        if explained.truncated:
            caption += f" The last {explained.truncated} token(s) were past the model's length."
        st.caption(caption)
        with st.expander("Scores per token"):
            st.dataframe(
                playground_charts.token_table(explained.tokens, explained.scores),
                hide_index=True,
                key=f"{key}:tokens",
            )
    elif explained.kind == "image" and explained.saliency is not None:
        st.image(
            explain.saliency_overlay(inputs, explained.saliency),
            caption=f"Where the model looked for {explained.target}",
            width=256,
        )
        st.caption(
            _reading(explained, "a plain image of the mean colour")
            + " Red marks the pixels that moved it most."
        )
