"""The job queue's writes: enqueue, claim (one statement, like runs), progress, finish, requeue,
and failing the jobs of a worker that went silent. Reads: db/jobs.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from db.models import jobs, workers
from db.session import utcnow, writing


def enqueue(
    db: Engine, *, kind: str, run_id: int, params: dict[str, Any], requested_by: str
) -> int:
    """Queue a job; returns its id."""
    with writing(db) as conn:
        return conn.execute(
            insert(jobs).values(
                kind=kind,
                run_id=run_id,
                params=params,
                status="queued",
                requested_by=requested_by,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]


def claim_next_job(db: Engine, worker_id: str) -> int | None:
    """Atomically move the oldest queued job to `running` for this worker; None if none."""
    oldest = (
        select(jobs.c.id)
        .where(jobs.c.status == "queued")
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(1)
    )
    if db.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    stmt = (
        update(jobs)
        .where(jobs.c.id == oldest.scalar_subquery(), jobs.c.status == "queued")
        .values(
            status="running",
            worker_id=worker_id,
            started_at=utcnow(),
            finished_at=None,
            error=None,
            progress="Starting…",
            progress_fraction=None,
        )
        .returning(jobs.c.id)
    )
    with writing(db) as conn:
        row = conn.execute(stmt).first()
    return None if row is None else row[0]


def mark_started(db: Engine, job_id: int, *, pid: int) -> None:
    with writing(db) as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(pid=pid))


def set_progress(db: Engine, job_id: int, text: str, fraction: float | None = None) -> None:
    """What a running job is doing now (shown on the page while it runs)."""
    with writing(db) as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "running")
            .values(progress=text, progress_fraction=fraction)
        )


def finish_job(
    db: Engine,
    job_id: int,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    worker_id: str | None = None,
) -> bool:
    """End a running job as completed or failed; False if it was not running (anymore), or
    (with `worker_id`) not that worker's: the first writer wins."""
    if status not in ("completed", "failed"):
        raise ValueError(f"a job finishes completed or failed, not {status!r}")
    where = [jobs.c.id == job_id, jobs.c.status == "running"]
    if worker_id is not None:
        where.append(jobs.c.worker_id == worker_id)
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if status == "completed":
        values.update(result=result, progress=None, progress_fraction=1.0)
    with writing(db) as conn:
        return conn.execute(update(jobs).where(*where).values(**values)).rowcount == 1


def requeue_job(db: Engine, job_id: int, *, worker_id: str) -> bool:
    """Put this worker's running job back in the queue (the engine is shutting down)."""
    with writing(db) as conn:
        changed = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.worker_id == worker_id)
            .values(
                status="queued",
                worker_id=None,
                pid=None,
                started_at=None,
                progress=None,
                progress_fraction=None,
            )
        )
        return changed.rowcount == 1


def fail_orphaned_jobs(db: Engine, *, alive_within_s: float, error: str) -> list[int]:
    """Fail every running job whose worker is stopped, gone, or silent for `alive_within_s`:
    no process of any engine runs it any more. Returns their ids."""
    cutoff = utcnow() - timedelta(seconds=alive_within_s)
    live = select(workers.c.id).where(
        workers.c.stopped_at.is_(None), workers.c.heartbeat_at >= cutoff
    )
    orphaned = (jobs.c.status == "running") & (
        jobs.c.worker_id.is_(None) | jobs.c.worker_id.not_in(live)
    )
    with writing(db) as conn:
        rows = conn.execute(
            update(jobs)
            .where(orphaned)
            .values(status="failed", error=error, finished_at=utcnow())
            .returning(jobs.c.id)
        ).all()
    return [r[0] for r in rows]
