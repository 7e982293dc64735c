"""Engine worker registrations and heartbeats."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select, update

from db.models import workers
from db.records import WorkerRecord
from db.session import reading, utcnow, writing


def register_worker(
    db: Engine, worker_id: str, *, hostname: str, pid: int, max_concurrent: int
) -> None:
    now = utcnow()
    with writing(db) as conn:
        conn.execute(
            workers.insert().values(
                id=worker_id,
                hostname=hostname,
                pid=pid,
                max_concurrent=max_concurrent,
                started_at=now,
                heartbeat_at=now,
                stopped_at=None,
            )
        )


def beat(db: Engine, worker_id: str) -> None:
    with writing(db) as conn:
        conn.execute(update(workers).where(workers.c.id == worker_id).values(heartbeat_at=utcnow()))


def mark_stopped(db: Engine, worker_id: str) -> None:
    with writing(db) as conn:
        conn.execute(update(workers).where(workers.c.id == worker_id).values(stopped_at=utcnow()))


def live_workers(db: Engine, *, within_s: float) -> list[WorkerRecord]:
    """Workers that are not stopped and beat within the last `within_s` seconds."""
    cutoff = utcnow() - timedelta(seconds=within_s)
    with reading(db) as conn:
        rows = conn.execute(
            select(workers).where(workers.c.stopped_at.is_(None), workers.c.heartbeat_at >= cutoff)
        ).all()
    return [WorkerRecord(**r._mapping) for r in rows]
