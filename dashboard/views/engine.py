"""Engine: is a worker alive, what is queued, which run trains where, and each device's load.

Reads engine/services/engine_status.py, the same as `seedlab engine status`; that check also
settles runs whose heartbeat stopped (requeued to resume, or failed), so nothing shows
`running` falsely.
"""

import pandas as pd
import streamlit as st

from dashboard import auth, data
from engine.core.formatting import format_duration
from engine.services.engine_status import START_HINT, engine_status

REFRESH_S = 3

auth.guard_page()
db = data.get_db()
settings = data.get_settings()

st.title("Engine")


def _gib(value: float | None) -> float | None:
    return None if value is None else value / 2**30


def _show() -> None:
    with data.shown_errors("reading the engine's state"):
        _draw()


def _draw() -> None:
    status = engine_status(settings, db)
    cols = st.columns(4)
    if status.alive:
        age = min(status.heartbeat_age_s(w) for w in status.workers)
        cols[0].metric("Engine", "running", f"heartbeat {age:.0f} s ago", border=True)
    else:
        cols[0].metric("Engine", "not running", border=True)
    cols[1].metric("Workers", len(status.workers), border=True)
    cols[2].metric("Queued", status.queued, border=True)
    cols[3].metric("In progress", len(status.running), border=True)

    if not status.alive:
        seen = status.last_seen
        when = (
            f"Its last heartbeat was {format_duration(status.heartbeat_age_s(seen))} ago."
            if seen
            else "It has never run on this database."
        )
        st.warning(
            f"Engine not running: queued runs wait. {when} {START_HINT}",
            icon=":material/power_off:",
        )
    for run_id, outcome in status.settled.items():
        verb = "requeued to resume" if outcome == "queued" else "marked failed"
        st.info(f"Run #{run_id} had stopped beating and was {verb}.", icon=":material/sync:")

    st.subheader("Runs in progress")
    if status.running:
        rows = status.to_dict()["running"]
        st.dataframe(
            pd.DataFrame(rows)[["id", "name", "device", "epoch", "epochs", "attempts"]],
            hide_index=True,
            column_config={"attempts": st.column_config.NumberColumn("resumes")},
        )
    else:
        st.caption("Nothing is training right now.")

    st.subheader("Devices")
    devices = status.devices()
    if not devices:
        st.caption("Devices appear here while a worker is running.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "device": [d["key"] for d in devices],
                "name": [d.get("name") for d in devices],
                "memory used (GiB)": [_gib(d.get("memory_used")) for d in devices],
                "memory total (GiB)": [_gib(d.get("memory_total")) for d in devices],
                "utilization %": [d.get("utilization") for d in devices],
                "runs": [", ".join(f"#{r}" for r in d["runs"]) or "—" for d in devices],
                "worker": [d["worker"] for d in devices],
            }
        ),
        hide_index=True,
        column_config={
            "memory used (GiB)": st.column_config.NumberColumn(format="%.1f"),
            "memory total (GiB)": st.column_config.NumberColumn(format="%.1f"),
            # Values are already percentages (0-100): without a format, Streamlit shows a
            # float as a fraction in percent (57.9 became "5,791 %").
            "utilization %": st.column_config.ProgressColumn(
                "busy",
                help="Share of the device in use: all CPU cores together, or the GPU's compute.",
                min_value=0,
                max_value=100,
                format="%.0f %%",
            ),
        },
    )
    for d in devices:
        if d.get("load_unknown"):
            st.caption(
                f"{d['key']} on {d['worker']}: memory used and utilization unknown "
                f"({d['load_unknown']}). Install nvidia-ml-py (pynvml) or put nvidia-smi on "
                "the engine's PATH to see them."
            )
    if any(d.get("kind") == "ray" for d in devices):
        st.caption(
            "Runs go to the Ray cluster as tasks, each with the CPUs, memory and GPU its "
            "config reserves (README: Ray cluster)."
        )
    elif not any(d.get("kind") == "cuda" for d in devices):
        st.caption("No GPU on the engine's machine: runs train on the CPU.")
    else:
        st.caption("Each GPU run sees only its GPU (CUDA_VISIBLE_DEVICES).")


st.fragment(_show, run_every=REFRESH_S)()
