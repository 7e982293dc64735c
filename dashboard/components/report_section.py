"""The Run page's Evaluation tab: everything in a run's report.json, drawn.

Kept apart from the page so the page stays about one run's lifecycle; the report is plain JSON
written by engine.ml.evaluate, so nothing here needs the model or the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from engine.core.catalog import metric_label
from engine.report import charts, report_charts

IMAGES_PER_ROW = 5


def metric_table(metrics: dict[str, float], n_test: int | None) -> None:
    st.dataframe(
        pd.DataFrame(
            {"metric": [metric_label(k) for k in metrics], "value": list(metrics.values())}
        ),
        hide_index=True,
        column_config={"value": st.column_config.NumberColumn(format="%.4f")},
        placeholder="—",
    )
    if n_test:
        st.caption(f"On {int(n_test):,} held-out test samples.")


def classification(report: dict[str, Any], home: Path) -> None:
    matrix, classes = report.get("confusion_matrix"), report.get("classes")
    cm_col, bars_col = st.columns(2, gap="large")
    with cm_col:
        if matrix and classes:
            st.markdown("**Confusion matrix**")
            share = st.toggle(
                "Normalise (share of each true class)",
                key="cm_normalize",
                help="Off: counts of test samples. On: each row sums to 100%.",
            )
            try:
                st.plotly_chart(
                    charts.confusion_matrix(matrix, classes, normalize=share), key="confusion"
                )
            except ValueError as exc:
                st.warning(f"The confusion matrix in report.json is malformed: {exc}")
    with bars_col:
        per_class = report.get("per_class")
        if isinstance(per_class, dict) and per_class:
            st.markdown("**Per class**")
            st.plotly_chart(report_charts.per_class_bars(per_class), key="per_class")
            with st.expander("Per-class table"):
                st.dataframe(pd.DataFrame.from_dict(per_class, orient="index"), width="stretch")

    roc, pr = report.get("roc_curves") or {}, report.get("pr_curves") or {}
    if roc or pr:
        roc_col, pr_col = st.columns(2, gap="large")
        with roc_col:
            st.markdown("**ROC curve**" + (" (one-vs-rest)" if len(roc) > 1 else ""))
            st.plotly_chart(report_charts.roc_curves(roc), key="roc")
        with pr_col:
            st.markdown("**Precision–recall curve**")
            st.plotly_chart(report_charts.pr_curves(pr), key="pr")
    mistakes(report.get("worst_mistakes") or [], home, task="classification")


def regression(report: dict[str, Any], home: Path) -> None:
    predictions = report.get("predictions") or {}
    true, predicted = predictions.get("true") or [], predictions.get("predicted") or []
    if true and len(true) == len(predicted):
        scatter_col, residual_col = st.columns(2, gap="large")
        with scatter_col:
            st.markdown("**Predicted vs actual**")
            st.plotly_chart(report_charts.predicted_vs_actual(true, predicted), key="pred_actual")
        with residual_col:
            st.markdown("**Residuals**")
            st.plotly_chart(report_charts.residuals(true, predicted), key="residuals")
    quantiles = report.get("residual_quantiles")
    if quantiles:
        with st.expander("Residual quantiles (actual − predicted)"):
            st.dataframe(
                pd.DataFrame({"quantile": list(quantiles), "residual": list(quantiles.values())}),
                hide_index=True,
            )
    mistakes(report.get("worst_mistakes") or [], home, task="regression")


def mistakes(rows: list[dict[str, Any]], home: Path, *, task: str) -> None:
    """The test samples the model got most wrong, as a person reads them."""
    if not rows:
        return
    if task == "classification":
        st.markdown(
            "**Worst mistakes** — wrong predictions the model was most confident about",
            help="Often label errors in the data, or classes that look alike.",
        )
    else:
        st.markdown("**Largest errors** — test rows furthest from their prediction")
    images = [r for r in rows if isinstance(r.get("input"), dict) and "image" in r["input"]]
    if images:
        _image_grid(images, home)
        return
    table = []
    for row in rows:
        entry = {k: v for k, v in row.items() if k not in ("input", "position")}
        inputs = row.get("input") if isinstance(row.get("input"), dict) else {}
        entry.update({f"{k}" if k == "text" else f"input · {k}": v for k, v in inputs.items()})
        table.append(entry)
    frame = pd.DataFrame(table)
    config = {
        "confidence": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
        "true_class_probability": st.column_config.NumberColumn("p(true class)", format="%.3f"),
        "text": st.column_config.TextColumn(width="large"),
    }
    st.dataframe(frame, hide_index=True, column_config=config, width="stretch")


def _image_grid(rows: list[dict[str, Any]], home: Path) -> None:
    from engine.data.image_store import described_image_bytes

    for start in range(0, len(rows), IMAGES_PER_ROW):
        batch = rows[start : start + IMAGES_PER_ROW]
        for col, row in zip(st.columns(IMAGES_PER_ROW), batch, strict=False):
            caption = f"true {row['true']} → {row['predicted']} ({row.get('confidence', 0):.0%})"
            # Only images inside SEEDLAB_HOME: the report names a dataset's own image.
            image = described_image_bytes(row["input"], home)
            with col:
                if image is not None:
                    st.image(image, caption=caption, width="stretch")
                else:
                    st.caption(f"{caption} — image file missing")
