"""Runs: every run, newest first, filterable; select a row to open it."""

import streamlit as st

from dashboard import data
from db import runs as run_store
from db.models import RUN_STATUSES

PAGE_SIZE = 500

st.title("Runs")
db = data.get_db()

counts = run_store.count_runs_by_status(db)
if sum(counts.values()) == 0:
    st.info("No runs yet — train one on a demo dataset.", icon=":material/info:")
    if st.button(
        "Train a model on a demo dataset", type="primary", icon=":material/rocket_launch:"
    ):
        with data.shown_errors("queuing the demo run"):
            data.open_run(data.queue_demo_run(db))
    st.page_link(
        data.NEW_RUN_PAGE, label="Or configure a run yourself", icon=":material/add_circle:"
    )
    st.stop()

records = data.datasets()
by_id = {r.id: r for r in records}

status_col, dataset_col, name_col = st.columns([2, 2, 1])
statuses = status_col.multiselect(
    "Status",
    list(RUN_STATUSES),
    format_func=lambda s: f"{s} ({counts.get(s, 0):,})",
    key="runs_status",
    placeholder="all statuses",
)
dataset_ids = dataset_col.multiselect(
    "Dataset",
    list(by_id),
    format_func=lambda i: by_id[i].name,
    key="runs_dataset",
    placeholder="all datasets",
)
name_part = name_col.text_input("Name contains", key="runs_name", placeholder="any name")

# Pages restart at the first whenever a filter changes.
filters = (tuple(statuses), tuple(dataset_ids), name_part)
if st.session_state.get("_runs_filters") != filters:
    st.session_state["_runs_filters"] = filters
    st.session_state["runs_page"] = 0
page = st.session_state.get("runs_page", 0)

with data.shown_errors("listing runs"):
    # One row more than a page tells whether an older page exists, without a COUNT query.
    runs = run_store.list_runs(
        db,
        statuses=statuses or None,
        dataset_ids=dataset_ids or None,
        name_contains=name_part.strip() or None,
        limit=PAGE_SIZE + 1,
        offset=page * PAGE_SIZE,
    )
    has_older = len(runs) > PAGE_SIZE
    runs = runs[:PAGE_SIZE]

    if not runs:
        st.info(
            "No runs match these filters. Clear a filter to see more.",
            icon=":material/filter_alt_off:",
        )
        st.stop()

    data.runs_table(runs, key="runs_table")

    first = page * PAGE_SIZE + 1
    nav_text, newer_col, older_col = st.columns([6, 1, 1], vertical_alignment="center")
    nav_text.caption(
        f"Runs {first:,}–{first + len(runs) - 1:,}, newest first. Select a row to open a run."
    )
    if newer_col.button(
        "Newer", icon=":material/chevron_left:", disabled=page == 0, width="stretch"
    ):
        st.session_state["runs_page"] = page - 1
        st.rerun()
    if older_col.button(
        "Older",
        icon=":material/chevron_right:",
        icon_position="right",
        disabled=not has_older,
        width="stretch",
    ):
        st.session_state["runs_page"] = page + 1
        st.rerun()
