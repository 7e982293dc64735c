"""The Admin page's Storage tab: disk use per project, run and dataset, and the clean-up of
old runs' checkpoints, exports and variants (engine/services/storage.py, which checks the
role again and writes the audit entry)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from engine.core.settings import Settings
from engine.services import storage
from engine.services.permissions import Permission
from engine.services.storage import format_bytes


def _mb(n: int) -> float:
    return n / 2**20


def show(db: Engine, settings: Settings) -> None:
    report = storage.usage(settings, db)
    cols = st.columns(4)
    cols[0].metric("Total", format_bytes(report.total_bytes), border=True)
    cols[1].metric("Runs", format_bytes(report.runs_bytes), border=True)
    cols[2].metric("Datasets", format_bytes(report.datasets_bytes), border=True)
    cols[3].metric("Database", format_bytes(report.database_bytes), border=True)
    st.caption(
        f"SEEDLAB_HOME {report.home}, measured at most {storage.CACHE_S:.0f} s ago; "
        "`seedlab storage --json` gives the same figures."
    )
    mb = st.column_config.NumberColumn(format="%.1f MB")
    if report.projects:
        st.subheader("Projects")
        st.dataframe(
            pd.DataFrame(
                {"project": list(report.projects), "MB": [_mb(v) for v in report.projects.values()]}
            ).sort_values("MB", ascending=False),
            hide_index=True,
            column_config={"MB": mb},
        )
    if report.runs:
        st.subheader("Runs")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "run": r.id,
                        "name": r.name,
                        "project": r.project,
                        "status": r.status,
                        "MB": _mb(r.bytes),
                        "checkpoint MB": _mb(r.parts["checkpoint"]),
                        "exports + variants MB": _mb(r.parts["exports"] + r.parts["variants"]),
                        "kept": r.kept_because,
                    }
                    for r in sorted(report.runs, key=lambda r: -r.bytes)
                ]
            ),
            hide_index=True,
            column_config={
                "MB": mb,
                "checkpoint MB": mb,
                "exports + variants MB": mb,
            },
        )
    if report.datasets:
        st.subheader("Datasets")
        st.dataframe(
            pd.DataFrame([{"dataset": d.name, "MB": _mb(d.bytes)} for d in report.datasets]),
            hide_index=True,
            column_config={"MB": mb},
        )
    if report.versions:
        st.subheader("Dataset versions")
        st.caption(
            "A version made by editing labels or leaving rows out shares its parent's data: "
            "its MB are the shared data's, counted once in the dataset's total."
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "dataset": v.dataset,
                        "version": v.number,
                        "runs": v.runs,
                        "data": "its own" if v.own_base else "shared",
                        "MB": _mb(v.bytes),
                    }
                    for v in report.versions
                ]
            ),
            hide_index=True,
            column_config={"MB": mb},
        )
    _clean(db, settings)


def _clean(db: Engine, settings: Settings) -> None:
    st.subheader("Clean up")
    st.caption(
        "Deletes the resume checkpoints, exports and variants of runs finished more than the "
        "chosen number of days ago. Never model.pt, metrics or reports, and nothing of a run "
        "tagged `keep` or registered as a model version."
    )
    days = st.number_input("Runs finished more than (days) ago", 0, 3650, 30, key="clean_days")
    plan = storage.plan_clean(settings, db, float(days))
    if not plan.items:
        st.info("Nothing to clean up for that age.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {"file": i.path, "kind": i.kind, "MB": _mb(i.bytes), "why": i.reason}
                    for i in plan.items
                ]
            ),
            hide_index=True,
            column_config={"MB": st.column_config.NumberColumn(format="%.2f MB")},
        )
    if plan.kept:
        st.caption("Kept: " + ", ".join(f"run {k} ({why})" for k, why in sorted(plan.kept.items())))
    if plan.items and st.button(
        f"Delete {len(plan.items)} items ({format_bytes(plan.bytes)})",
        icon=":material/delete_sweep:",
        disabled=not auth.can(Permission.MANAGE_STORAGE),
    ):
        with data.shown_errors("cleaning up"):
            done = storage.clean(settings, db, auth.require(Permission.MANAGE_STORAGE), float(days))
            data.flash(f"Freed {format_bytes(done.bytes)} ({len(done.items)} items).")
            st.rerun()
