"""The Run page's Evaluation tab: permutation feature importance (report["importance"]).

A run whose report has none (an older run) gets a button that queues it as a job for the engine
(engine/services/jobs.py); the page shows the job and draws the chart when it is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from dashboard import auth, data
from dashboard.components import job_status
from engine.report.importance_chart import caption, importance_bars
from engine.services import jobs
from engine.services.permissions import Permission


def _compute(run_id: int) -> None:
    db, settings = data.get_db(), data.get_settings()
    if st.button(
        "Compute feature importance",
        key="importance_compute",
        icon=":material/bar_chart:",
        disabled=not auth.can(Permission.EXPORT),
    ):
        with data.shown_errors("queueing the importance"):
            actor = auth.require(Permission.EXPORT, what=f"run {run_id}")
            jobs.request_importance(settings, db, actor, run_id)
    job_status.panel(db, run_id, "importance", lambda _job: "Feature importance")


def section(report: Mapping[str, Any], run_id: int, kind: str | None) -> None:
    """The Evaluation tab's importance part (table models only)."""
    importance = report.get("importance")
    if not isinstance(importance, Mapping) or not importance.get("features"):
        if kind == "tabular":
            st.caption(
                f"No feature importance in this run's report (older run). Compute it here, or "
                f"with `seedlab runs importance {run_id}`."
            )
            _compute(run_id)
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
