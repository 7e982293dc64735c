"""The Run page's Evaluation tab: permutation feature importance (report["importance"])."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from engine.report.importance_chart import caption, importance_bars


def section(report: Mapping[str, Any], run_id: int, kind: str | None) -> None:
    """The Evaluation tab's importance part (table models only)."""
    importance = report.get("importance")
    if not isinstance(importance, Mapping) or not importance.get("features"):
        if kind == "tabular":
            st.caption(
                f"No feature importance in this run's report (older run). Compute it with "
                f"`seedlab runs importance {run_id}`."
            )
        return
    st.markdown(
        "**Feature importance**",
        help="How much the test metric drops when one input column is shuffled (all its "
        "one-hot columns together), averaged over a few shuffles.",
    )
    try:
        st.plotly_chart(importance_bars(importance), key="importance")
    except (KeyError, TypeError, ValueError) as exc:
        st.warning(f"The importance in report.json is malformed: {exc}")
        return
    st.caption(caption(importance))
