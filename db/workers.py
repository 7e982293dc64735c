"""Engine worker registrations and heartbeats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from db.models import workers
from db.records import WorkerRecord
from db.session import reading, utcnow, writing


def register_worker(
    db: Engine,
    worker_id: str,
    *,
    hostname: str,
    pid: int,
    max_concurrent: int,
    devices: list[dict[str, Any]] | None = None,
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
                devices=devices,
            )
        )


def beat(db: Engine, worker_id: str, *, devices: list[dict[str, Any]] | None = None) -> None:
    """Refresh the heartbeat (and, when given, the devices with their current load)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if devices is not None:
        values["devices"] = devices
    with writing(db) as conn:
        conn.execute(update(workers).where(workers.c.id == worker_id).values(**values))


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


def last_worker(db: Engine) -> WorkerRecord | None:
    """The worker that beat most recently, alive or not (to say when the engine was last seen)."""
    with reading(db) as conn:
        row = conn.execute(select(workers).order_by(workers.c.heartbeat_at.desc()).limit(1)).first()
    return None if row is None else WorkerRecord(**row._mapping)
