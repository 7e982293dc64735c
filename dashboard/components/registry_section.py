"""The Run page's registry and sharing controls: where this run is registered, "Register model"
for a completed run, and the shareable HTML report download."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from db import registry
from db.records import RunRecord
from engine.core.settings import Settings
from engine.services import runs as run_actions
from engine.services.model_registry import STAGES, register
from engine.services.permissions import Permission

MODELS_PAGE = "views/models.py"


def show(db: Engine, settings: Settings, run: RunRecord) -> None:
    versions = registry.versions_of_run(db, run.id)
    with st.container(horizontal=True, vertical_alignment="center"):
        if run.status == "completed":
            _register(db, settings, run)
        st.download_button(
            "HTML report",
            # Built only when clicked: the file carries plotly.js (several MB) to open offline.
            data=lambda: _report(settings, db, run.id),
            file_name=f"run-{run.id}-report.html",
            mime="text/html",
            on_click="ignore",
            icon=":material/share:",
            disabled=not auth.can(Permission.EXPORT),
            help="One self-contained page (config, curves, evaluation, importance) that opens "
            "offline in any browser, for people without access to Seedlab.",
        )
        if versions:
            listed = ", ".join(f"{v.name} v{v.version} ({v.stage})" for v in versions)
            st.caption("Registered as " + data.md_text(listed))
            st.page_link(MODELS_PAGE, label="Models", icon=":material/inventory_2:")


def _report(settings: Settings, db: Engine, run_id: int) -> str:
    actor = auth.require(Permission.EXPORT, what=f"run {run_id}")
    return run_actions.html_report(settings, db, actor, run_id)


def _register(db: Engine, settings: Settings, run: RunRecord) -> None:
    with st.popover("Register model", icon=":material/inventory_2:"):
        with st.form("register_form", border=False):
            name = st.text_input(
                "Model name",
                key="register_name",
                max_chars=registry.MAX_NAME_LENGTH,
                placeholder=f"{run.dataset_name}-model",
                help="Versions count up per name; register the next run under the same name.",
            )
            stage = st.selectbox(
                "Stage",
                STAGES,
                key="register_stage",
                help="Production archives the version of this name that was in production.",
            )
            description = st.text_input("Description (optional)", key="register_description")
            submitted = st.form_submit_button("Register", type="primary")
        if submitted:
            with data.shown_errors("registering the model"):
                actor = auth.require(Permission.PROMOTE, what=f"run {run.id}")
                version = register(
                    settings,
                    db,
                    actor,
                    run.id,
                    name or f"{run.dataset_name}-model",
                    stage=stage,
                    description=description,
                )
                data.flash(f"Registered as {data.md_text(version.label)} ({version.stage}).")
                st.rerun()
