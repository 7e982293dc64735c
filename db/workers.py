"""Engine worker registrations and heartbeats, read (live workers, the last one). Writes:
db/writes/workers.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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


# ---------------------------------------------------------------- moved to db.writes (transitional)
# The writes of this module now live in db/writes/workers.py. engine/cli/* and engine/execution/*
# (restructured on other branches during issue 17) still reach some of them here; this lazy
# forward keeps them working until they import db.writes.workers (or call a service) themselves.
# Delete it then: while it is here, importing this module can still reach a write.
_MOVED_TO_WRITES = frozenset({"register_worker", "beat", "mark_stopped"})


def __getattr__(name: str) -> Any:  # noqa: ANN401
    if name in _MOVED_TO_WRITES:
        from db.writes import workers as writes

        return getattr(writes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
