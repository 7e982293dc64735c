"""Models: the registry. Every registered name with its versions, stages, source runs and test
metrics; move a version to another stage (one production version per name) or remove it; serve
the production version over HTTP (dashboard/components/serving_section.py)."""

import pandas as pd
import streamlit as st

from dashboard import auth, data
from dashboard.components import serving_section
from db import registry
from db.registry import RegisteredModel
from engine.core.catalog import TEST_METRICS, metric_label
from engine.services.model_registry import STAGES, promote, unregister
from engine.services.permissions import Permission

STAGE_HEX = {
    "none": "#a3a8b84d",
    "staging": "#1c83e14d",
    "production": "#21c3544d",
    "archived": "#ffa4214d",
}
METRIC_ORDER = [*TEST_METRICS["classification"], *TEST_METRICS["regression"]]

db = data.get_db()


def _versions_frame(model: RegisteredModel) -> tuple[pd.DataFrame, dict]:
    keys = [k for k in METRIC_ORDER if any(k in v.metrics for v in model.versions)]
    rows = []
    for v in model.versions:
        row = {
            "version": v.version,
            "stage": [v.stage],  # a list: shown as a coloured pill
            "run": f"run?run={v.run_id}",
            "run name": v.run_name,
            "dataset": v.dataset_name,
            # Beside the version, not after the metrics: at the end it sat off-screen.
            "description": v.description or None,
        }
        row.update({metric_label(k): v.metrics.get(k) for k in keys})
        row["registered"] = data.local_time(v.created_at)
        rows.append(row)
    config = {
        "version": st.column_config.NumberColumn("version", format="v%d", width="small"),
        "stage": st.column_config.MultiselectColumn(
            "stage", options=list(STAGE_HEX), color=list(STAGE_HEX.values()), width=110
        ),
        # Relative link to the Run page; shows the run id.
        "run": st.column_config.LinkColumn("run", display_text=r"run\?run=(\d+)", width="small"),
        "registered": st.column_config.DatetimeColumn("registered", format="YYYY-MM-DD HH:mm"),
        "description": st.column_config.TextColumn("description", width="large"),
    }
    config.update({metric_label(k): st.column_config.NumberColumn(format="%.4f") for k in keys})
    return pd.DataFrame(rows), config


def _stage_form(model: RegisteredModel) -> None:
    versions = [v.version for v in model.versions]
    version_col, stage_col, apply_col = st.columns([1, 1, 1], vertical_alignment="bottom")
    version = version_col.selectbox(
        "Version", versions, format_func=lambda n: f"v{n}", key=f"models_version_{model.name}"
    )
    stage = stage_col.selectbox(
        "Move to stage",
        STAGES,
        index=STAGES.index("production"),
        key=f"models_stage_{model.name}",
        help="Production archives the version that was in production (one per name).",
    )
    if apply_col.button("Apply", key=f"models_apply_{model.name}", icon=":material/swap_vert:"):
        with data.shown_errors("changing the stage"):
            before = model.production
            actor = auth.require(Permission.PROMOTE, what=f"model {model.name}")
            record = promote(db, actor, model.name, version, stage)
            message = f"{data.md_text(record.label)} is now {record.stage}."
            if stage == "production" and before is not None and before.version != version:
                message += f" v{before.version} was archived."
            data.flash(message)
            st.rerun()
    with st.expander("Remove a version from the registry"):
        st.caption(
            "The run and its files stay. A production version cannot be removed: archive it "
            "or promote another first. A run with registered versions cannot be deleted."
        )
        doomed = st.selectbox(
            "Version to remove",
            versions,
            format_func=lambda n: f"v{n}",
            key=f"models_remove_version_{model.name}",
        )
        confirm = st.checkbox(
            "I want to remove this version", key=f"models_remove_confirm_{model.name}"
        )
        if st.button(
            "Remove", key=f"models_remove_{model.name}", disabled=not confirm, type="primary"
        ):
            with data.shown_errors("removing the version"):
                actor = auth.require(Permission.PROMOTE, what=f"model {model.name}")
                unregister(db, actor, model.name, doomed)
                data.flash(f"Removed {data.md_text(model.name)} v{doomed} from the registry.")
                st.rerun()


def _model(model: RegisteredModel) -> None:
    st.subheader(data.md_text(model.name), divider="gray")
    production = f"production v{model.production.version}" if model.production else "no production"
    st.caption(
        f"{production} · {len(model.versions)} version(s) · default v{model.default.version} "
        f"(what the Playground loads unless you pick a version)"
    )
    # What the model is for, in its registrant's words: the version a user of the name gets.
    if model.default.description.strip():
        st.markdown(f"v{model.default.version}: {data.md_text(model.default.description)}")
    frame, config = _versions_frame(model)
    st.dataframe(frame, hide_index=True, column_config=config, placeholder="—", width="stretch")
    _stage_form(model)
    serving_section.show(db, model)


auth.guard_page()
st.title("Models")
data.show_flash()
with data.shown_errors("reading the registry"):
    models = registry.list_models(db)
    if not models:
        st.info(
            "No registered models yet — open a completed run and use **Register model**, or run "
            "`seedlab models register RUN_ID NAME`.",
            icon=":material/inventory_2:",
        )
        st.page_link(data.RUNS_PAGE, label="Go to Runs", icon=":material/list:")
    for registered in models:
        _model(registered)
