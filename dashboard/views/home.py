"""Home: what Seedlab is, what is in it, whether the engine runs, and a one-click first run."""

import streamlit as st

from dashboard import auth, data
from db import runs as run_store
from engine.services.permissions import Permission

auth.guard_page()
db = data.get_db()


def _queue_demo() -> None:
    """The demo button's callback: it runs before the page does, so the Run page opens without
    Home being drawn again first (the click's time is the demo audience's wait)."""
    with data.shown_errors("queuing the demo run"):
        st.session_state["demo_run_id"] = data.queue_demo_run(db, auth.require(Permission.LAUNCH))


# The rerun the click starts opens the Run page first thing, before any of Home is drawn.
if (queued := st.session_state.pop("demo_run_id", None)) is not None:
    data.open_run(queued)

st.title("Seedlab")
st.markdown(
    "Your own ML lab: **upload a table → train a model → watch it learn → compare runs**, "
    "all on this machine."
)

with data.shown_errors("reading the overview"):
    n_datasets = len(data.datasets())
    counts = run_store.count_runs_by_status(db)
    alive = data.engine_alive(db)

    cols = st.columns(6)
    cols[0].metric("Datasets", n_datasets, border=True)
    for col, status in zip(cols[1:], data.STATUS_COLORS, strict=True):
        col.metric(data.status_markdown(status), counts.get(status, 0), border=True)

    if alive:
        st.success("The engine is running: queued runs start on their own.", icon=":material/bolt:")
    else:
        st.warning(
            f"The engine is not running, so queued runs wait. {data.ENGINE_HINT}",
            icon=":material/power_off:",
        )

st.subheader("Get started")
left, right = st.columns([1, 2], vertical_alignment="center")
with left:
    st.button(
        "Train a model on a demo dataset",
        on_click=_queue_demo,
        type="primary",
        icon=":material/rocket_launch:",
        help="Queues a small neural network that learns to read handwritten digits (a few "
        "seconds of training) and opens its page, where its curves grow as it learns.",
        disabled=not auth.can(Permission.LAUNCH),
    )
with right:
    st.caption("Or bring your own data on **Datasets**, then pick every setting on **New run**.")

st.subheader("Recent runs")
with data.shown_errors("listing recent runs"):
    recent = run_store.list_runs(db, limit=10)
    if not recent:
        st.info(
            "No runs yet — train one on a demo dataset with the button above.",
            icon=":material/info:",
        )
    else:
        data.runs_table(recent, key="home_recent_runs")
        st.caption("Select a row to open the run.")
        st.page_link(data.RUNS_PAGE, label="All runs", icon=":material/list:")
