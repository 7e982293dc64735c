"""Jobs: export, compression and importance that a page queued for the engine (table `jobs`).

The lifecycle mirrors a run's, smaller: enqueue → claim (one statement, atomic across workers) →
progress → finish. A worker owns the jobs it claimed; one that stops cleanly requeues them, and
the jobs of a worker that vanished are failed by the next worker (`fail_orphaned_jobs`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from db.models import jobs
from db.records import JobRecord
from db.session import reading

_ACTIVE = ("queued", "running")


def _record(row: Any) -> JobRecord:
    return JobRecord(**row._mapping)


def find_active(db: Engine, *, kind: str, run_id: int, params: dict[str, Any]) -> JobRecord | None:
    """A queued or running job that asks for exactly this (a second click finds the first)."""
    stmt = (
        select(jobs)
        .where(jobs.c.run_id == run_id, jobs.c.kind == kind, jobs.c.status.in_(_ACTIVE))
        .order_by(jobs.c.id)
    )
    with reading(db) as conn:
        rows = conn.execute(stmt).all()
    # JSON equality is compared here, not in SQL: backends disagree on it, and there are few rows.
    return next((_record(r) for r in rows if r.params == params), None)


def get_job(db: Engine, job_id: int) -> JobRecord | None:
    with reading(db) as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return None if row is None else _record(row)


def list_jobs(
    db: Engine, run_id: int, *, kind: str | None = None, limit: int = 20
) -> list[JobRecord]:
    """A run's jobs, newest first."""
    stmt = select(jobs).where(jobs.c.run_id == run_id)
    if kind is not None:
        stmt = stmt.where(jobs.c.kind == kind)
    stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
    with reading(db) as conn:
        return [_record(r) for r in conn.execute(stmt).all()]
