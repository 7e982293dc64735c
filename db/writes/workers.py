"""Engine (worker) rows: register at start, heartbeat, mark stopped.

Reads: db/workers.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update

from db.models import workers
from db.session import utcnow, writing


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
