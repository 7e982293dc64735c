"""Batch prediction in the Playground: a CSV in, the same CSV with prediction columns out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components.playground_model import LoadedModel
from engine.core.csv_safe import to_safe_csv
from engine.core.errors import SeedlabError
from engine.data.tables import read_table
from engine.ml.predictor import PredictorError, predict_frame
from engine.report import playground_charts

PREVIEW_ROWS = 20


def predictions(models: list[tuple[str, LoadedModel]], frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each model's prediction columns; with two models (A/B) they are prefixed
    `A: ` and `B: ` so the two sets sit side by side."""
    if len(models) == 1:
        loaded = models[0][1]
        with loaded.lock:
            return predict_frame(loaded.predictor, frame)
    out = frame
    for tag, loaded in models:
        with loaded.lock:
            added = predict_frame(loaded.predictor, frame).iloc[:, len(frame.columns) :]
        out = pd.concat([out, added.add_prefix(f"{tag}: ")], axis=1)
    return out


def _needs(models: list[tuple[str, LoadedModel]]) -> str:
    columns: list[str] = []
    for _, loaded in models:
        predictor = loaded.predictor
        if predictor.kind == "text":
            columns.append(predictor.preprocessor.text_column)  # type: ignore[union-attr]
        columns += predictor.input_columns
    return ", ".join(data.md_code(c) for c in dict.fromkeys(columns))


def batch_section(models: list[tuple[str, LoadedModel]], key: str) -> None:
    if any(loaded.predictor.kind == "image" for _, loaded in models):
        st.info(
            "Batch prediction takes a CSV of table rows or texts. For many images use the "
            "command line: `seedlab predict RUN_ID --image a.png --image b.png`.",
            icon=":material/image:",
        )
        return
    st.caption(f"The CSV needs the column(s) {_needs(models)}; other columns are kept as they are.")
    upload = st.file_uploader(
        "Table to predict (CSV, TSV or Parquet)", type=["csv", "tsv", "txt", "parquet"], key=key
    )
    if upload is None:
        return
    try:
        frame = read_table(upload.getvalue(), upload.name)
        result = predictions(models, frame)
    except (PredictorError, SeedlabError) as exc:
        st.error(data.md_text(str(exc)), icon=":material/error:")
        return
    st.success(f"Predicted {len(result):,} row(s).")
    st.download_button(
        "Download with predictions (CSV)",
        to_safe_csv(result, index=False).encode("utf-8"),  # opened in spreadsheets
        file_name=f"{upload.name.rsplit('.', 1)[0]}-predictions.csv",
        mime="text/csv",
        key=f"{key}:download",
        icon=":material/download:",
    )
    preview = playground_charts.probability_columns(result.head(PREVIEW_ROWS))
    st.dataframe(preview, hide_index=True, key=f"{key}:preview")
    if len(result) > PREVIEW_ROWS:
        st.caption(f"The first {PREVIEW_ROWS} of {len(result):,} rows; the download has all.")
