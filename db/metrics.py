"""Metric points, written in bulk, and the per-run summary kept beside them."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from db.models import metrics, run_summaries
from db.session import reading, writing

Point = tuple[str, int, float, float]  # key, step, value, wall_time


def _upsert(conn: Connection):  # noqa: ANN202
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def insert_points(conn: Connection, run_id: int, points: list[Point]) -> None:
    """Insert points (a re-sent step overwrites) and fold them into run_summaries."""
    if not points:
        return
    dialect_insert = _upsert(conn)
    rows = [
        {"run_id": run_id, "key": k, "step": int(s), "value": float(v), "wall_time": float(t)}
        for k, s, v, t in points
    ]
    stmt = dialect_insert(metrics)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["run_id", "key", "step"],
            set_={"value": stmt.excluded.value, "wall_time": stmt.excluded.wall_time},
        ),
        rows,
    )

    batch: dict[str, dict[str, float]] = {}
    for key, step, value, _ in points:
        entry = batch.get(key)
        if entry is None:
            batch[key] = {
                "last_value": value,
                "last_step": step,
                "min_value": value,
                "max_value": value,
            }
            continue
        if step >= entry["last_step"]:
            entry["last_value"], entry["last_step"] = value, step
        entry["min_value"] = min(entry["min_value"], value)
        entry["max_value"] = max(entry["max_value"], value)
    least = func.least if conn.dialect.name == "postgresql" else func.min
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
    stmt = dialect_insert(run_summaries)
    ex = stmt.excluded
    newer = ex.last_step >= run_summaries.c.last_step
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "last_value": case((newer, ex.last_value), else_=run_summaries.c.last_value),
                "last_step": case((newer, ex.last_step), else_=run_summaries.c.last_step),
                "min_value": least(run_summaries.c.min_value, ex.min_value),
                "max_value": greatest(run_summaries.c.max_value, ex.max_value),
            },
        ),
        [{"run_id": run_id, "key": k, **v} for k, v in batch.items()],
    )


def append_metrics(db: Engine, run_id: int, points: list[Point]) -> None:
    """Append a batch of points in one transaction (executemany, not one ORM object each)."""
    with writing(db) as conn:
        insert_points(conn, run_id, points)


def metric_history(
    db: Engine, run_ids: Iterable[int], keys: Iterable[str] | None = None
) -> pd.DataFrame:
    """All points of the runs (and keys): columns run_id, key, step, value, wall_time."""
    stmt = select(metrics).where(metrics.c.run_id.in_(list(run_ids)))
    if keys is not None:
        stmt = stmt.where(metrics.c.key.in_(list(keys)))
    stmt = stmt.order_by(metrics.c.run_id, metrics.c.key, metrics.c.step)
    with reading(db) as conn:
        result = conn.execute(stmt)
        frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    return frame


def metric_keys(db: Engine, run_ids: Iterable[int]) -> list[str]:
    with reading(db) as conn:
        rows = conn.execute(
            select(run_summaries.c.key).where(run_summaries.c.run_id.in_(list(run_ids))).distinct()
        ).all()
    return sorted(r[0] for r in rows)
