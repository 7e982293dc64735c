"""A run's jobs (export, compression, importance) as the Run page shows them: waiting, running
with its progress, or how the last one ended.

The page only queues a job (engine/services/jobs.py) and reads its row; the engine's worker does
the work. While a job is queued or running, a fragment re-reads it every two seconds; when the
set of active jobs changes (one finished), it reruns the whole page, so new downloads and the
variants table appear.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from sqlalchemy import Engine

from dashboard import data
from db import jobs as job_store
from db.records import JobRecord
from db.session import utcnow

REFRESH_S = 2
# How long the outcome of the last finished job stays on the page.
RECENT_S = 15 * 60


def _jobs(db: Engine, run_id: int, kind: str) -> tuple[list[JobRecord], tuple[int, ...]]:
    """The jobs to show (the active ones and the newest finished one, if recent) and the ids
    of the active ones."""
    jobs = job_store.list_jobs(db, run_id, kind=kind, limit=20)
    active = [j for j in jobs if j.active]
    finished = [j for j in jobs if not j.active][:1]
    recent = [
        j
        for j in finished
        if j.finished_at is not None and (utcnow() - j.finished_at).total_seconds() < RECENT_S
    ]
    return sorted([*active, *recent], key=lambda j: j.id), tuple(j.id for j in active)


def _show(job: JobRecord, label: str, alive: bool) -> None:
    if job.status == "queued":
        if alive:
            st.info(
                f"{label}: queued — it starts as soon as the engine is free.",
                icon=":material/schedule:",
            )
        else:
            st.warning(
                f"{label} waits until the engine runs: it is not running now. {data.ENGINE_HINT}",
                icon=":material/power_off:",
            )
    elif job.status == "running":
        fraction = job.progress_fraction
        st.progress(
            min(1.0, max(0.0, fraction or 0.0)),
            text=data.md_message(f"{label}: {job.progress or 'running…'}"),
        )
        if not alive:
            st.warning(
                f"The engine stopped while this job ran; it fails the job when it starts again, "
                f"then request it again. {data.ENGINE_HINT}",
                icon=":material/power_off:",
            )
    elif job.status == "completed":
        message = str((job.result or {}).get("message") or "Done.")
        icon = ":material/school:" if job.params.get("method") == "distill" else None
        st.success(data.md_message(message), icon=icon or ":material/check_circle:")
    else:
        st.error(
            data.md_message(job.error or f"{label} failed without a message."),
            icon=":material/error:",
        )


def _panel(
    db: Engine,
    run_id: int,
    kind: str,
    shown_active: tuple[int, ...],
    label: Callable[[JobRecord], str],
) -> None:
    with data.shown_errors("showing the job"):
        jobs, active = _jobs(db, run_id, kind)
        if active != shown_active:
            st.rerun()  # a job ended (or another started): downloads and tables change too
        alive = data.engine_alive(db) if active else True
        for job in jobs:
            _show(job, label(job), alive)


def panel(db: Engine, run_id: int, kind: str, label: Callable[[JobRecord], str]) -> None:
    """The run's `kind` jobs; refreshed every few seconds only while one is active."""
    _, active = _jobs(db, run_id, kind)
    refresh = REFRESH_S if active else None
    st.fragment(_panel, run_every=refresh)(db, run_id, kind, active, label)
