"""Runs: every run of the chosen project, filtered, sorted and paged in the database (so 10,000
runs never render at once); pick runs to compare. The whole view lives in the URL."""

from functools import partial

import streamlit as st

from dashboard import auth, data
from dashboard.components.projects import current_project_id
from dashboard.components.run_table import (
    OPS,
    PAGE_SIZES,
    TableState,
    column_label,
    default_columns,
    export_csv,
    number_format,
    table_frame,
)
from db import run_query
from db import runs as run_store
from db.models import RUN_STATUSES
from db.run_query import METRIC_PREFIX, PARAM_PREFIX, SORT_COLUMNS
from engine.core import verdicts
from engine.core.catalog import TABLE_METRICS, metric_label
from engine.core.display_text import display_text
from engine.core.formatting import format_metric
from engine.report import compare_groups
from engine.services import runs as run_actions
from engine.services.dataset_versions import list_versions
from engine.services.permissions import Permission

MAX_SELECT_ALL = 500
_STATE = "_runs_view"  # the TableState last shown (survives leaving the page)
# Runs grouped at most (Groups expander): the statistics of a larger set are read from its
# first GROUP_LIMIT in the list's order.
GROUP_LIMIT = 1000
_URL_KEYS = (
    "status dataset model tag q metric op value archived sort asc page size cols runs version"
).split()

auth.guard_page()
st.title("Runs")
db = data.get_db()
project_id = current_project_id()
data.show_flash()

if sum(run_store.count_runs_by_status(db).values()) == 0:
    st.info("No runs yet — train one on a demo dataset.", icon=":material/info:")
    if st.button(
        "Train a model on a demo dataset",
        type="primary",
        icon=":material/rocket_launch:",
        disabled=not auth.can(Permission.LAUNCH),
    ):
        with data.shown_errors("queuing the demo run"):
            data.open_run(data.queue_demo_run(db, auth.require(Permission.LAUNCH)))
    st.page_link(
        data.NEW_RUN_PAGE, label="Or configure a run yourself", icon=":material/add_circle:"
    )
    st.caption("Or try Seedlab at scale: `seedlab demo fill --runs 10000 --steps 100`.")
    st.stop()


def _pinned_baseline() -> None:
    """The project's pinned baseline run, above the list whatever its filters and sort (Run
    page: Pin as baseline; `seedlab runs pin ID`)."""
    pinned = run_actions.baseline_runs(db, [project_id]) if project_id is not None else []
    run = run_store.get_run(db, pinned[0]) if pinned else None
    if run is None:
        return
    results = " · ".join(
        f"{metric_label(k)} {format_metric(k, run.last(k))}"
        for k in TABLE_METRICS
        if k in run.summary
    )
    with st.container(border=True, horizontal=True, vertical_alignment="center"):
        st.markdown(
            f":material/push_pin: **Baseline** #{run.id} {data.md_text(run.name)} · {run.status}"
            + (f" · {results}" if results else "")
        )
        st.page_link(
            data.RUN_PAGE, label="open", query_params={"run": str(run.id)}, width="content"
        )


with data.shown_errors("reading the pinned baseline"):
    _pinned_baseline()


# ---------------------------------------------------------------- state: URL ⇄ widgets

url = {k: st.query_params[k] for k in _URL_KEYS if k in st.query_params}
saved: TableState = st.session_state.get(_STATE) or TableState()
if url and url != st.session_state.get("_runs_url_written"):
    saved = TableState.from_params(url)  # a shared link (or a back/forward) wins
    st.session_state.pop("rf_status", None)  # reload the widgets from it below
if "rf_status" not in st.session_state:
    st.session_state.update(
        rf_status=saved.statuses,
        rf_dataset=saved.dataset_ids,
        rf_version=saved.version,
        rf_model=saved.models,
        rf_tag=saved.tags,
        rf_name=saved.name,
        rf_metric=saved.metric,
        rf_op=saved.op,
        rf_value=saved.value,
        rf_archived=saved.archived,
        rf_sort=saved.sort,
        rf_desc=saved.descending,
        rf_size=saved.page_size,
        rf_page=saved.page,
    )
    if saved.columns is not None:
        st.session_state["rf_cols"] = saved.columns
selected: list[int] = list(saved.selected)


@st.cache_data(ttl=30, show_spinner=False)
def _choices(db_url: str, project: int) -> tuple[list[str], list[str], list[str], list[str]]:
    return (
        run_query.metric_keys(db, project),
        run_query.param_names(db, project),
        run_query.model_names(db, project),
        run_query.tag_names(db, project),
    )


metric_keys, param_names, models, tags = _choices(str(db.url), project_id)
datasets = {d.id: d.name for d in data.datasets()}

# ---------------------------------------------------------------- filters

name_col, status_col, dataset_col, model_col, tag_col = st.columns([2, 2, 2, 1, 2])
name_col.text_input("Name contains", key="rf_name", placeholder="any name")
status_col.multiselect("Status", list(RUN_STATUSES), key="rf_status", placeholder="any status")
st.session_state["rf_dataset"] = [i for i in st.session_state["rf_dataset"] if i in datasets]
dataset_col.multiselect(
    "Dataset", list(datasets), format_func=datasets.get, key="rf_dataset", placeholder="any"
)
# One dataset with several versions: narrow to the runs trained on one of them.
if len(st.session_state["rf_dataset"]) == 1:
    numbers = [v.number for v in list_versions(db, st.session_state["rf_dataset"][0])]
    if st.session_state.get("rf_version") not in numbers:
        st.session_state["rf_version"] = None
    if len(numbers) > 1:
        dataset_col.selectbox(
            "Version",
            [None, *numbers],
            key="rf_version",
            format_func=lambda n: "any version" if n is None else f"version {n}",
        )
else:
    st.session_state["rf_version"] = None
st.session_state["rf_model"] = [m for m in st.session_state["rf_model"] if m in models]
model_col.multiselect("Model", models, key="rf_model", placeholder="any")
st.session_state["rf_tag"] = [t for t in st.session_state["rf_tag"] if t in tags]
tag_col.multiselect("Tag", tags, key="rf_tag", placeholder="any tag", format_func=display_text)

metric_col, op_col, value_col, archived_col, sort_col, dir_col = st.columns(
    [2, 1, 1, 1, 2, 1], vertical_alignment="bottom"
)
if st.session_state["rf_metric"] not in [None, *metric_keys]:
    st.session_state["rf_metric"] = None
metric_col.selectbox(
    "Metric threshold",
    metric_keys,
    key="rf_metric",
    index=None,
    placeholder="no threshold",
    format_func=metric_label,
)
op_col.selectbox(
    "Comparison",
    list(OPS),
    format_func=lambda o: "≥" if o == "ge" else "≤",
    key="rf_op",
    label_visibility="hidden",
)
value_col.number_input("Value", key="rf_value", value=None, format="%.4f", placeholder="value")
archived_col.toggle("Archived too", key="rf_archived")
sort_options = [
    *SORT_COLUMNS,
    *(METRIC_PREFIX + k for k in metric_keys),
    *(PARAM_PREFIX + p for p in param_names),
]
if st.session_state["rf_sort"] not in sort_options:
    st.session_state["rf_sort"] = "created_at"
sort_col.selectbox("Sort by", sort_options, key="rf_sort", format_func=column_label)
dir_col.toggle("Descending", key="rf_desc")

default_cols = default_columns(metric_keys)
column_options = [METRIC_PREFIX + k for k in metric_keys] + [PARAM_PREFIX + p for p in param_names]
if "rf_cols" not in st.session_state:
    st.session_state["rf_cols"] = default_cols
st.session_state["rf_cols"] = [c for c in st.session_state["rf_cols"] if c in column_options]
columns = st.multiselect(
    "Columns",
    column_options,
    key="rf_cols",
    format_func=column_label,
    help="Metrics (each run's last value) and settings (its config fields).",
)

state = TableState(
    statuses=st.session_state["rf_status"],
    dataset_ids=st.session_state["rf_dataset"],
    version=st.session_state.get("rf_version"),
    models=st.session_state["rf_model"],
    tags=st.session_state["rf_tag"],
    name=st.session_state["rf_name"],
    metric=st.session_state["rf_metric"],
    op=st.session_state["rf_op"],
    value=st.session_state["rf_value"],
    archived=st.session_state["rf_archived"],
    sort=st.session_state["rf_sort"],
    descending=st.session_state["rf_desc"],
    page_size=st.session_state["rf_size"],
    page=st.session_state["rf_page"],
    columns=None if columns == default_cols else columns,
    selected=selected,
)
# A new filter or sort starts again at page 1.
signature = (*state.run_filter(project_id).__dict__.values(), state.sort, state.descending)
if st.session_state.get("_runs_signature") not in (None, signature):
    state.page = 1
st.session_state["_runs_signature"] = signature

# ---------------------------------------------------------------- the page of runs

with data.shown_errors("listing runs"):
    flt = state.run_filter(project_id)
    total = run_query.count_runs(db, flt)
    pages = max(1, -(-total // state.page_size))
    state.page = min(state.page, pages)
    runs = run_query.query_runs(
        db,
        flt,
        sort=state.sort,
        descending=state.descending,
        limit=state.page_size,
        offset=(state.page - 1) * state.page_size,
    )
    st.session_state["rf_page"] = state.page

    def remember() -> None:
        st.session_state[_STATE] = state
        st.session_state["_runs_url_written"] = state.to_params()
        st.query_params.from_dict(
            {
                **({"project": st.query_params["project"]} if "project" in st.query_params else {}),
                **state.to_params(),
            }
        )

    if not runs:
        remember()
        st.info(
            "No runs match these filters. Clear a filter to see more.",
            icon=":material/filter_alt_off:",
        )
        st.stop()

    page_ids = [r.id for r in runs]
    table_key = f"runs_table_{hash((signature, state.page, state.page_size)) & 0xFFFFFFFF}"

    def on_table_select(key: str, ids: list[int]) -> None:
        # Only what changed on this page counts: rows picked on other pages stay picked.
        rows = {ids[i] for i in st.session_state[key].selection.rows}
        before = st.session_state.get("_prev_" + key, set())
        picked = st.session_state[_STATE].selected
        picked = [i for i in picked if i not in before - rows] + sorted(rows - before - set(picked))
        st.session_state["_prev_" + key] = rows
        st.session_state[_STATE].selected = picked

    frame = table_frame(runs, columns, {d.id: d.kind for d in data.datasets()})
    frame["created"] = frame["created"].map(data.local_time)
    # Says what is wrong with a completed run ("completed · overfitting", in amber).
    frame["status"] = [[verdicts.status_text(r.status, r.verdict)] for r in runs]
    frame.insert(1, "open", [f"run?run={i}" for i in frame["id"]])
    config = data.runs_column_config()
    config.update(
        {
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.0f"),
            "tags": st.column_config.ListColumn("tags"),
            **{
                c: st.column_config.NumberColumn(
                    column_label(c), help=c, format=number_format(c, frame[c])
                )
                for c in columns
                if c.startswith(METRIC_PREFIX)
            },
            **{
                c: st.column_config.Column(column_label(c), help=c)
                for c in columns
                if c.startswith(PARAM_PREFIX)
            },
        }
    )
    remember()
    st.dataframe(
        frame,
        hide_index=True,
        column_config=config,
        placeholder="—",
        on_select=partial(on_table_select, table_key, page_ids),
        selection_mode="multi-row",
        key=table_key,
    )
    selected = st.session_state[_STATE].selected

    info_col, prev_col, page_col, next_col, size_col = st.columns(
        [5, 1, 1, 1, 1], vertical_alignment="bottom"
    )
    first = (state.page - 1) * state.page_size + 1
    info_col.caption(
        f"Page {state.page:,} of {pages:,} · runs {first:,}–{first + len(runs) - 1:,} of "
        f"{total:,} matching. Select rows to compare them; the link opens a run."
    )

    def turn_page(delta: int) -> None:
        st.session_state["rf_page"] = st.session_state["rf_page"] + delta

    prev_col.button(
        "Previous",
        icon=":material/chevron_left:",
        disabled=state.page <= 1,
        on_click=turn_page,
        args=(-1,),
    )
    page_col.number_input("Page", min_value=1, max_value=pages, key="rf_page")
    next_col.button(
        "Next",
        icon=":material/chevron_right:",
        disabled=state.page >= pages,
        on_click=turn_page,
        args=(1,),
    )
    size_col.selectbox("Per page", PAGE_SIZES, key="rf_size")

    # ------------------------------------------------------------ groups

    def _groups() -> None:
        """The matching runs (all pages, up to GROUP_LIMIT) grouped by one param: each group's
        run count and mean ± standard deviation of the headline metrics."""
        matching = run_query.query_runs(db, flt, limit=GROUP_LIMIT)
        options = compare_groups.group_options(matching) if len(matching) > 1 else []
        if not options:
            st.caption("Grouping needs runs whose settings differ.")
            return
        param = st.selectbox("Group the matching runs by", options, key="rf_group")
        keys = [k for k in TABLE_METRICS if any(k in r.summary for r in matching)]
        values = compare_groups.group_values(matching, param)
        table = compare_groups.group_metrics(matching, keys, values)
        st.dataframe(
            compare_groups.shown_group_metrics(table, keys), hide_index=True, key="rf_groups"
        )
        limited = f" (the first {GROUP_LIMIT:,} in this order)" if total > GROUP_LIMIT else ""
        st.caption(
            f"{len(matching):,} matching runs{limited}: each metric's mean ± standard deviation "
            "over the group's runs (their last values). Compare draws groups' curves."
        )

    # Read only once opened: the expander's statistics read up to GROUP_LIMIT runs, which a
    # visit to the list need not pay for.
    grouping = st.expander(
        "Groups: mean ± standard deviation by a setting", key="rf_groups_open", on_change="rerun"
    )
    if grouping.open:
        with grouping, data.shown_errors("grouping the runs"):
            _groups()

    # ------------------------------------------------------------ selection and actions

    st.subheader(f"Selected: {len(selected)} run(s)")
    known = {r.id: r for r in runs}
    known.update(
        {r.id: r for r in run_query.runs_by_ids(db, [i for i in selected if i not in known])}
    )
    selected = [i for i in selected if i in known]

    def on_pick() -> None:
        st.session_state[_STATE].selected = list(st.session_state["rf_selected"])

    st.session_state["rf_selected"] = selected
    st.multiselect(
        "Runs to compare",
        list(dict.fromkeys([*selected, *page_ids])),
        format_func=lambda i: f"#{i} {known[i].name}",
        key="rf_selected",
        on_change=on_pick,
        placeholder="select rows in the table, or pick runs here",
    )
    with st.container(horizontal=True):
        if st.button(
            f"Compare {len(selected)} runs",
            type="primary",
            icon=":material/compare_arrows:",
            disabled=not selected,
        ):
            st.switch_page(data.COMPARE_PAGE, query_params={"runs": ",".join(map(str, selected))})
        if st.button("Select this page", icon=":material/select_all:"):
            st.session_state[_STATE].selected = list(dict.fromkeys([*selected, *page_ids]))
            st.rerun()
        if total <= MAX_SELECT_ALL and st.button(
            f"Select all {total:,} matching", icon=":material/done_all:"
        ):
            everything = run_query.query_runs(
                db, flt, sort=state.sort, descending=state.descending, limit=None
            )
            st.session_state[_STATE].selected = list(
                dict.fromkeys([*selected, *(r.id for r in everything)])
            )
            st.rerun()
        if st.button("Clear selection", icon=":material/deselect:", disabled=not selected):
            st.session_state[_STATE].selected = []
            st.rerun()
        st.download_button(
            f"Export {total:,} matching runs (CSV)",
            data=lambda: export_csv(db, state, project_id),
            file_name="runs.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )

    if selected and auth.can(Permission.EDIT):
        with st.expander(f"Edit the {len(selected)} selected run(s): tags, note, archive"):
            add_col, remove_col = st.columns(2)
            new_tags = add_col.text_input("Add tags (comma separated)", key="rf_add_tags")
            gone_tags = remove_col.multiselect(
                "Remove tags",
                sorted({t for i in selected for t in known[i].tags}),
                key="rf_remove_tags",
                format_func=display_text,
            )
            note = st.text_area("Note (replaces the note of each selected run)", key="rf_note")
            with st.container(horizontal=True):
                # Each action checks every selected run's owner (engine.services.runs.edit_runs).
                if st.button("Apply tags", icon=":material/sell:"):
                    with data.shown_errors("tagging the runs"):
                        run_actions.tag_runs(
                            db,
                            auth.require(Permission.EDIT),
                            selected,
                            add=new_tags.split(","),
                            remove=gone_tags,
                        )
                        _choices.clear()
                        data.flash(f"Tags updated on {len(selected)} run(s).")
                        st.rerun()
                if st.button("Save note", icon=":material/edit_note:"):
                    with data.shown_errors("saving the note"):
                        run_actions.set_notes(db, auth.require(Permission.EDIT), selected, note)
                        data.flash(f"Note saved on {len(selected)} run(s).")
                        st.rerun()
                for label, archived, icon, done in (
                    ("Archive", True, "archive", "; 'Archived too' shows them."),
                    ("Unarchive", False, "unarchive", "."),
                ):
                    if st.button(label, icon=f":material/{icon}:"):
                        with data.shown_errors(f"{label.lower()}ing the runs"):
                            run_actions.set_archived(
                                db, auth.require(Permission.EDIT), selected, archived
                            )
                            data.flash(f"{label}d {len(selected)} run(s){done}")
                            st.rerun()
