"""Sweep reads. Trials are ordinary runs with runs.sweep_id set. Writes (create, end, best
trial, pruned): db/writes/sweeps.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from db.models import datasets, runs, sweeps
from db.records import SweepRecord
from db.session import reading


def _select() -> Any:  # noqa: ANN401
    return select(sweeps, datasets.c.name.label("dataset_name")).outerjoin(
        datasets, datasets.c.id == sweeps.c.dataset_id
    )


def get_sweep(db: Engine, sweep_id: int) -> SweepRecord | None:
    with reading(db) as conn:
        row = conn.execute(_select().where(sweeps.c.id == sweep_id)).first()
    return None if row is None else SweepRecord(**row._mapping)


def list_sweeps(db: Engine, *, statuses: tuple[str, ...] | None = None) -> list[SweepRecord]:
    stmt = _select().order_by(sweeps.c.created_at.desc(), sweeps.c.id.desc())
    if statuses:
        stmt = stmt.where(sweeps.c.status.in_(statuses))
    with reading(db) as conn:
        return [SweepRecord(**r._mapping) for r in conn.execute(stmt).all()]


def trial_run_ids(db: Engine, sweep_id: int) -> list[int]:
    """The sweep's runs, oldest first (trial number = position)."""
    with reading(db) as conn:
        rows = conn.execute(
            select(runs.c.id).where(runs.c.sweep_id == sweep_id).order_by(runs.c.id)
        ).all()
    return [r[0] for r in rows]


PRUNED_TAG = "pruned"
