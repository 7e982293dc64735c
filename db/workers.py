"""Engine worker registrations and heartbeats, read (live workers, the last one). Writes:
db/writes/workers.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from db.models import workers
from db.records import WorkerRecord
from db.session import reading, utcnow


def live_workers(db: Engine, *, within_s: float) -> list[WorkerRecord]:
    """Workers that are not stopped and beat within the last `within_s` seconds."""
    cutoff = utcnow() - timedelta(seconds=within_s)
    with reading(db) as conn:
        rows = conn.execute(
            select(workers).where(workers.c.stopped_at.is_(None), workers.c.heartbeat_at >= cutoff)
        ).all()
    return [WorkerRecord(**r._mapping) for r in rows]


def last_worker(db: Engine) -> WorkerRecord | None:
    """The worker that beat most recently, alive or not (to say when the engine was last seen)."""
    with reading(db) as conn:
        row = conn.execute(select(workers).order_by(workers.c.heartbeat_at.desc()).limit(1)).first()
    return None if row is None else WorkerRecord(**row._mapping)
