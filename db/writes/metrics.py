"""Writing metric points in bulk, and the per-run summary kept beside them (one upsert each).

Reads: db/metrics.py.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from db.metrics import Point
from db.models import metrics, run_summaries
from db.session import writing


@cache
def _upsert_statements(dialect: str) -> tuple[Any, Any]:
    """The two upserts, built once per dialect: rebuilding them cost ~1.5 ms per batch."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    least = func.least if dialect == "postgresql" else func.min
    greatest = func.greatest if dialect == "postgresql" else func.max

    points = dialect_insert(metrics)
    points = points.on_conflict_do_update(
        index_elements=["run_id", "key", "step"],
        set_={"value": points.excluded.value, "wall_time": points.excluded.wall_time},
    )
    summary = dialect_insert(run_summaries)
    ex = summary.excluded
    newer = ex.last_step >= run_summaries.c.last_step
    summary = summary.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={
            "last_value": case((newer, ex.last_value), else_=run_summaries.c.last_value),
            "last_step": case((newer, ex.last_step), else_=run_summaries.c.last_step),
            "min_value": least(run_summaries.c.min_value, ex.min_value),
            "max_value": greatest(run_summaries.c.max_value, ex.max_value),
        },
    )
    return points, summary


# PostgreSQL: the whole batch as five arrays in one statement. An executemany costs one
# statement execution per point on the server (~3x slower here); a multi-row VALUES would
# compile a new statement for every batch size.
_PG_POINTS_UPSERT = (
    "INSERT INTO metrics (run_id, key, step, value, wall_time) "
    "SELECT * FROM unnest(%s::integer[], %s::varchar[], %s::integer[], "
    "%s::double precision[], %s::double precision[]) "
    "ON CONFLICT (run_id, key, step) DO UPDATE "
    "SET value = excluded.value, wall_time = excluded.wall_time"
)


# The summary likewise; SET reads the old row (s.*), so both CASEs compare with the old step.
_PG_SUMMARY_UPSERT = (
    "INSERT INTO run_summaries AS s (run_id, key, last_value, last_step, min_value, max_value) "
    "SELECT * FROM unnest(%s::integer[], %s::varchar[], %s::double precision[], "
    "%s::integer[], %s::double precision[], %s::double precision[]) "
    "ON CONFLICT (run_id, key) DO UPDATE SET "
    "last_value = CASE WHEN excluded.last_step >= s.last_step "
    "THEN excluded.last_value ELSE s.last_value END, "
    "last_step = GREATEST(excluded.last_step, s.last_step), "
    "min_value = LEAST(s.min_value, excluded.min_value), "
    "max_value = GREATEST(s.max_value, excluded.max_value)"
)


_POINT_COLUMNS = ("run_id", "key", "step", "value", "wall_time")


_SUMMARY_COLUMNS = ("run_id", "key", "last_value", "last_step", "min_value", "max_value")


def _upsert(conn: Connection, stmt: Any, pg_sql: str, columns: tuple, rows: list[dict]) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(pg_sql, tuple([r[c] for r in rows] for c in columns))
    else:
        conn.execute(stmt, rows)


def insert_points(conn: Connection, run_id: int, points: list[Point]) -> None:
    """Insert points (a re-sent step overwrites) and fold them into run_summaries.

    NaN is stored as NULL (SQLite cannot hold NaN) and left out of the summary, so one NaN
    never loses the rest of the batch.
    """
    if not points:
        return
    points_stmt, summary_stmt = _upsert_statements(conn.dialect.name)
    # One row per (key, step), the last one winning, as if the points were written in order:
    # PostgreSQL refuses an upsert that touches the same row twice in one statement.
    rows_by_step: dict[tuple[str, int], dict[str, Any]] = {}
    batch: dict[str, dict[str, float]] = {}
    for key, step, value, wall_time in points:
        step, value = int(step), float(value)
        finite_or_inf = not math.isnan(value)
        rows_by_step[(key, step)] = {
            "run_id": run_id,
            "key": key,
            "step": step,
            "value": value if finite_or_inf else None,
            "wall_time": float(wall_time),
        }
        if not finite_or_inf:
            continue
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
        if value < entry["min_value"]:
            entry["min_value"] = value
        if value > entry["max_value"]:
            entry["max_value"] = value
    _upsert(conn, points_stmt, _PG_POINTS_UPSERT, _POINT_COLUMNS, list(rows_by_step.values()))
    if batch:
        summaries = [{"run_id": run_id, "key": k, **v} for k, v in batch.items()]
        _upsert(conn, summary_stmt, _PG_SUMMARY_UPSERT, _SUMMARY_COLUMNS, summaries)


def append_metrics(db: Engine, run_id: int, points: list[Point]) -> None:
    """Append a batch of points in one transaction (executemany, not one ORM object each)."""
    with writing(db) as conn:
        insert_points(conn, run_id, points)


def discard_after_epoch(db: Engine, run_id: int, epoch: int) -> int:
    """Delete the run's points past the end of `epoch` (all of them for epoch 0), and rebuild
    its summary from what is left; returns how many points went.

    A run that resumes from its checkpoint at epoch k logs again from there: the points a dead
    attempt wrote after k are replaced by the new ones, never kept beside them. The end of an
    epoch is read from the run's `epoch` series (engine/core/epochs.py); a run without one
    logged one point per epoch, at step = epoch.
    """
    with writing(db) as conn:
        has_marks = conn.execute(
            select(metrics.c.step).where(metrics.c.run_id == run_id, metrics.c.key == "epoch")
        ).first()
        if has_marks is None:
            cut = epoch
        else:
            cut = conn.execute(
                select(func.coalesce(func.max(metrics.c.step), 0)).where(
                    metrics.c.run_id == run_id,
                    metrics.c.key == "epoch",
                    metrics.c.value <= epoch,
                )
            ).scalar_one()
        gone = conn.execute(
            delete(metrics).where(metrics.c.run_id == run_id, metrics.c.step > cut)
        ).rowcount
        if gone:
            _rebuild_summary(conn, run_id)
        return gone


def _rebuild_summary(conn: Connection, run_id: int) -> None:
    """The run's summary rows again from its points (last, min and max of each key; NULL, the
    stored NaN, left out as insert_points leaves it out)."""
    present = metrics.c.value.is_not(None)
    extremes = (
        select(
            metrics.c.key,
            func.max(metrics.c.step).label("last_step"),
            func.min(metrics.c.value).label("min_value"),
            func.max(metrics.c.value).label("max_value"),
        )
        .where(metrics.c.run_id == run_id, present)
        .group_by(metrics.c.key)
        .subquery()
    )
    rows = conn.execute(
        select(
            extremes.c.key,
            metrics.c.value,
            extremes.c.last_step,
            extremes.c.min_value,
            extremes.c.max_value,
        ).join(
            metrics,
            (metrics.c.run_id == run_id)
            & (metrics.c.key == extremes.c.key)
            & (metrics.c.step == extremes.c.last_step),
        )
    ).all()
    conn.execute(delete(run_summaries).where(run_summaries.c.run_id == run_id))
    if rows:
        conn.execute(
            run_summaries.insert(),
            [
                {
                    "run_id": run_id,
                    "key": key,
                    "last_value": value,
                    "last_step": step,
                    "min_value": low,
                    "max_value": high,
                }
                for key, value, step, low, high in rows
            ],
        )
