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
    facts = {
        "Commit": (git.get("commit") or "not in a git checkout")
        + (f" ({git['branch']})" if git.get("branch") else ""),
        "Working tree": ("changed since the commit (diff below)" if git.get("dirty") else "clean")
        if git
        else "-",
        "Python": f"{python.get('version', '?')} ({python.get('executable', '?')})",
        "Command": " ".join(str(a) for a in code.get("command") or []) or "-",
        "Host": code.get("host") or "-",
        "Device": code.get("device") or "-",
    }
    st.table(pd.DataFrame({"": list(facts), "Value": list(facts.values())}).set_index(""))
    if git.get("dirty") and git.get("diff"):
        with st.expander("Uncommitted changes (git diff)"):
            if git.get("diff_truncated"):
                st.caption("The diff was cut: only its beginning was recorded.")
            st.code(git["diff"], language="diff")
    packages = code.get("packages") or {}
    if packages:
        with st.expander(f"Installed packages ({len(packages)})"):
            st.dataframe(
                pd.DataFrame({"Package": list(packages), "Version": list(packages.values())}),
                hide_index=True,
            )


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
