"""The run lifecycle's writes: create (queue), claim, start, progress, cancel, finish, and the
stale-run and requeue transitions the engine makes.

Reads: db/runs.py and db/run_query.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from db.models import (
    ACTIVE_STATUSES,
    DEFAULT_PROJECT_ID,
    FINISHED_STATUSES,
    run_tags,
    runs,
)
from db.runs import _stale
from db.session import utcnow, writing
from db.writes.metrics import insert_points


def create_run(
    db: Engine,
    *,
    name: str,
    dataset_id: int | None,
    config: dict[str, Any],
    parent_run_id: int | None = None,
    tags: Iterable[str] = (),
    notes: str = "",
    project_id: int = DEFAULT_PROJECT_ID,
    sweep_id: int | None = None,
    owner: str | None = None,
    dataset_version: int | None = None,
    source: str = "builtin",
) -> int:
    with writing(db) as conn:
        run_id = conn.execute(
            insert(runs).values(
                source=source,
                name=name,
                dataset_id=dataset_id,
                dataset_version=dataset_version,
                config=config,
                status="queued",
                cancel_requested=False,
                created_at=utcnow(),
                parent_run_id=parent_run_id,
                notes=notes,
                project_id=project_id,
                sweep_id=sweep_id,
                archived=False,
                attempts=0,
                owner=owner,
            )
        ).inserted_primary_key[0]
        unique_tags = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
        if unique_tags:
            conn.execute(insert(run_tags), [{"run_id": run_id, "tag": t} for t in unique_tags])
        return run_id


def create_sdk_run(
    db: Engine,
    *,
    name: str,
    config: dict[str, Any],
    project_id: int = DEFAULT_PROJECT_ID,
    dataset_id: int | None = None,
    owner: str | None = None,
    pid: int | None = None,
) -> int:
    """A run that the team's own code logs through the SDK: `running` from the start (no queue,
    no worker), source "sdk", on a Seedlab dataset or none."""
    with writing(db) as conn:
        values = sdk_run_values(name, config, project_id, dataset_id, owner, pid)
        return conn.execute(insert(runs).values(**values)).inserted_primary_key[0]


def sdk_run_values(
    name: str,
    config: dict[str, Any],
    project_id: int,
    dataset_id: int | None,
    owner: str | None,
    pid: int | None = None,
) -> dict[str, Any]:
    """The row of a new SDK run, `running` from now (also written over the HTTP API:
    db/writes/remote_streams.py)."""
    now = utcnow()
    return {
        "name": name,
        "dataset_id": dataset_id,
        "config": config,
        "status": "running",
        "cancel_requested": False,
        "created_at": now,
        "started_at": now,
        "heartbeat_at": now,
        "pid": pid,
        "notes": "",
        "project_id": project_id,
        "archived": False,
        "attempts": 0,
        "owner": owner,
        "source": "sdk",
    }


def claim_next_run(
    db: Engine, worker_id: str, *, devices: Iterable[str] | None = None
) -> int | None:
    """Atomically move the oldest queued run to `running` for this worker; None if none.

    With `devices`, only a run whose config asks for one of them (`auto`, `cpu`, `cuda`): the
    worker passes the kinds it has a free slot for, so runs keep their order within each kind.
    """
    oldest = select(runs.c.id).where(runs.c.status == "queued")
    if devices is not None:
        wanted = func.coalesce(runs.c.config["device"].as_string(), "auto")
        oldest = oldest.where(wanted.in_(list(devices)))
    oldest = oldest.order_by(runs.c.created_at, runs.c.id).limit(1)
    if db.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    now = utcnow()
    stmt = (
        update(runs)
        .where(runs.c.id == oldest.scalar_subquery(), runs.c.status == "queued")
        .values(
            status="running",
            worker_id=worker_id,
            started_at=now,
            heartbeat_at=now,
            error=None,
            finished_at=None,
        )
        .returning(runs.c.id)
    )
    with writing(db) as conn:
        row = conn.execute(stmt).first()
    return None if row is None else row[0]


def mark_started(db: Engine, run_id: int, *, pid: int, device: str | None = None) -> None:
    values: dict[str, Any] = {"pid": pid, "heartbeat_at": utcnow()}
    if device is not None:
        values["device"] = device
    with writing(db) as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def record_progress(db: Engine, run_id: int, points: list[tuple[str, int, float, float]]) -> bool:
    """Append metric points and beat the heartbeat in one short transaction.

    Returns whether a cancel was requested, so the caller learns it at every flush.
    """
    beat = (
        update(runs)
        .where(runs.c.id == run_id)
        .values(heartbeat_at=utcnow())
        .returning(runs.c.cancel_requested)
    )
    with writing(db) as conn:
        insert_points(conn, run_id, points)
        # One statement beats and reads the flag: a round trip less on a database server.
        return bool(conn.execute(beat).scalar())


def request_cancel(db: Engine, run_id: int) -> str | None:
    """Ask a run to stop. A queued run is cancelled at once; a running one at its next flush.

    Returns the run's status after the request, or None if the run does not exist.
    """
    with writing(db) as conn:
        # FOR UPDATE (a no-op on SQLite, whose writers are serialized anyway): on PostgreSQL a
        # claimer skips the locked row, so "cancelled" is never answered for a run just claimed.
        status = conn.execute(
            select(runs.c.status).where(runs.c.id == run_id).with_for_update()
        ).scalar()
        if status is None:
            return None
        if status == "queued":
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(
                    status="cancelled",
                    cancel_requested=True,
                    finished_at=utcnow(),
                    error=None,
                )
            )
            return "cancelled"
        if status == "running":
            conn.execute(update(runs).where(runs.c.id == run_id).values(cancel_requested=True))
        return status


def finish_run(
    db: Engine,
    run_id: int,
    status: str,
    error: str | None = None,
    *,
    verdict: dict[str, Any] | None = None,
) -> bool:
    """Set a final status, only if the run is still active (first writer wins).

    `verdict`: a completed run's baselines and warnings (engine/ml/verdict.py); any other
    final status, or a completed run without one, stores NULL ("no verdict").
    """
    if status not in FINISHED_STATUSES:
        raise ValueError(f"status must be one of {FINISHED_STATUSES}, got {status!r}")
    kept = verdict if status == "completed" else None
    with writing(db) as conn:
        return (
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(ACTIVE_STATUSES))
                .values(status=status, error=error, finished_at=utcnow(), verdict=kept)
            ).rowcount
            > 0
        )


def fail_stale_run(db: Engine, run_id: int, *, heartbeat_timeout_s: float, reason: str) -> bool:
    """Fail one run, only if it is still `running` with a stale heartbeat (it may have beaten
    since it was found stale)."""
    with writing(db) as conn:
        return (
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, _stale(heartbeat_timeout_s))
                .values(status="failed", error=reason, finished_at=utcnow())
            ).rowcount
            > 0
        )


def requeue_run(
    db: Engine,
    run_id: int,
    *,
    from_statuses: Iterable[str] = ("running",),
    stale_after_s: float | None = None,
    worker_id: str | None = None,
) -> bool:
    """Put a run back in the queue to resume from its checkpoint (attempts += 1).

    Only from `from_statuses`; with `stale_after_s`, only while its heartbeat is that old; with
    `worker_id`, only while that worker owns it. The run keeps its id, metrics and created_at,
    so it goes ahead of runs queued after it. Returns whether it was requeued.
    """
    conditions = [runs.c.id == run_id, runs.c.status.in_(list(from_statuses))]
    if stale_after_s is not None:
        conditions.append(_stale(stale_after_s))
    if worker_id is not None:
        conditions.append(runs.c.worker_id == worker_id)
    with writing(db) as conn:
        return (
            conn.execute(
                update(runs)
                .where(*conditions)
                .values(
                    status="queued",
                    attempts=runs.c.attempts + 1,
                    cancel_requested=False,
                    worker_id=None,
                    pid=None,
                    heartbeat_at=None,
                    finished_at=None,
                    error=None,
                )
            ).rowcount
            > 0
        )


def fail_running_run(db: Engine, run_id: int, *, worker_id: str, error: str) -> bool:
    """Fail a run only while it is `running` for this worker (its runner may have requeued or
    finished it in the meantime: then the runner's word stands)."""
    with writing(db) as conn:
        return (
            conn.execute(
                update(runs)
                .where(
                    runs.c.id == run_id, runs.c.status == "running", runs.c.worker_id == worker_id
                )
                .values(status="failed", error=error, finished_at=utcnow())
            ).rowcount
            > 0
        )


def record_chosen_config(db: Engine, run_id: int, config: dict[str, Any]) -> None:
    """Replace a `model=auto` run's config with the one it trains (the candidate it chose, with
    its family's values), so the Run page, the Runs list and a clone show what trained."""
    with writing(db) as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(config=config))
