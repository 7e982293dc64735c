"""The Datasets page's section for a text dataset: texts per label and how long the texts are."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from db.records import DatasetRecord
from engine.core.errors import SeedlabError
from engine.report import charts

SAMPLES_PER_LABEL = 3


@st.cache_data(ttl=3600, show_spinner=False, max_entries=16)
def _overview(dataset_id: int, path: str) -> tuple[pd.DataFrame, pd.Series]:
    from engine.data.stored import load_frame
    from engine.data.text import text_overview

    record = next((r for r in data.datasets() if r.id == dataset_id and r.path == path), None)
    if record is None:
        raise SeedlabError(f"Dataset #{dataset_id} no longer exists. Pick another one.")
    columns = [record.schema["text_column"], record.target]
    frame = load_frame(data.get_settings(), record, columns=columns)
    return text_overview(frame, record.schema, SAMPLES_PER_LABEL)


def show_text_dataset(record: DatasetRecord) -> None:
    """Sample texts per label and the distribution of tokens per text."""
    schema = record.schema
    st.markdown(f"**Texts** (column {data.md_text(schema['text_column'])})")
    dropped = schema.get("rows_dropped_missing_text") or 0
    if dropped:
        st.caption(f"{dropped:,} rows with an empty text were left out at upload.")
    with data.shown_errors("reading the texts"):
        samples, lengths = _overview(record.id, record.path)
        samples_col, lengths_col = st.columns([3, 2])
        with samples_col:
            st.markdown(f"**Sample texts per label** (first {SAMPLES_PER_LABEL} of each)")
            st.dataframe(
                samples,
                hide_index=True,
                height=300,
                column_config={"text": st.column_config.TextColumn("text", width="large")},
            )
        with lengths_col:
            st.markdown("**Tokens per text**")
            st.plotly_chart(charts.target_histogram(lengths, name="tokens per text"), height=300)
            tokens = schema.get("text_tokens", {})
            if tokens:
                st.caption(
                    f"median {tokens['median']:g}, 95th percentile {tokens['p95']:g}, longest "
                    f"{tokens['max']:,} tokens. A run keeps the first max_length tokens of each."
                )
