"""The Run page's Code tab and System section: what the run ran (engine/core/provenance.py)
and its CPU, memory and GPU figures over time (engine/execution/system_metrics.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import data
from db import metrics as metric_store
from engine.core.provenance import read_code
from engine.core.settings import Settings
from engine.report import charts

SYSTEM_KEYS = [key for _title, _unit, labels in charts.SYSTEM_CHARTS for key in labels]


def show_code(settings: Settings, run_id: int) -> None:
    """Commit and diff, Python, command line, host, device and installed packages."""
    code = read_code(settings, run_id)
    if not code:
        st.info(
            "Nothing recorded about the code of this run: it has not started yet, or it ran "
            "before Seedlab recorded what ran.",
            icon=":material/code:",
        )
        return
    git = code.get("git") or {}
    python = code.get("python") or {}
    origin = code.get("imported_from") or {}
    if origin:
        st.caption(data.md_text(_origin_text(origin)))
    facts: dict[str, str] = {}
    if git.get("commit"):
        facts["Commit"] = git["commit"] + (f" ({git['branch']})" if git.get("branch") else "")
    elif not origin:
        facts["Commit"] = "not in a git checkout"
    if "dirty" in git:
        facts["Working tree"] = "changed since the commit (diff below)" if git["dirty"] else "clean"
    if python:
        facts["Python"] = f"{python.get('version', '?')} ({python.get('executable', '?')})"
    if code.get("command"):
        facts["Command"] = " ".join(str(a) for a in code["command"])
    for key, label in (("host", "Host"), ("device", "Device")):
        if code.get(key):
            facts[label] = str(code[key])
    if facts:
        st.table(pd.DataFrame({"": list(facts), "Value": list(facts.values())}).set_index(""))
    if git.get("dirty") and git.get("diff"):
        with st.expander("Uncommitted changes (git diff)"):
            if git.get("diff_truncated"):
                st.caption("The diff was cut: only its beginning was recorded.")
            st.code(git["diff"], language="diff")
    tags = code.get("tags") or {}
    if tags:
        with st.expander(f"Tags in the source tracker ({len(tags)})"):
            st.dataframe(
                pd.DataFrame({"Tag": list(tags), "Value": [str(v) for v in tags.values()]}),
                hide_index=True,
            )
    packages = code.get("packages") or {}
    if packages:
        with st.expander(f"Installed packages ({len(packages)})"):
            st.dataframe(
                pd.DataFrame({"Package": list(packages), "Version": list(packages.values())}),
                hide_index=True,
            )


def _origin_text(origin: dict) -> str:
    """Where an imported run came from (engine/services/importing.py), in one sentence."""
    if origin.get("tracker") == "mlflow":
        return (
            f"Imported from MLflow: run {origin.get('run_id')} of experiment "
            f"{origin.get('experiment')!r} in {origin.get('tracking_uri')}."
        )
    return f"Imported from TensorBoard event files in {origin.get('folder')}."


def show_system(db: Engine, run_id: int) -> None:
    """CPU %, resident memory, GPU utilisation and memory, if the run recorded any."""
    with data.shown_errors("drawing the system metrics"):
        history = metric_store.metric_history(db, [run_id], keys=SYSTEM_KEYS)
        figures = charts.system_curves(history)
        if not figures:
            return
        st.markdown("**System**")
        for column, (title, figure) in zip(st.columns(len(figures)), figures, strict=True):
            with column:
                st.caption(title)
                st.plotly_chart(figure, key=f"system_{title}")
