"""Metric points and the per-run summary kept beside them, read back as series and histories.
Writes (bulk upserts): db/writes/metrics.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, bindparam, select

from db.models import metrics, run_summaries
from db.session import reading

Point = tuple[str, int, float, float]  # key, step, value, wall_time


HISTORY_COLUMNS = ("run_id", "key", "step", "value", "wall_time")


@dataclass(frozen=True)
class MetricSeries:
    """One metric of one run as plain arrays, ordered by step: what a chart or a reader of a
    long series needs, without a DataFrame's construction cost (about half of a 10,000-step read).
    """

    run_id: int
    key: str
    steps: np.ndarray  # int64
    values: np.ndarray  # float64; NaN where NaN was logged
    wall_times: np.ndarray  # float64, seconds since the epoch

    def __len__(self) -> int:
        return len(self.steps)


@cache
def _series_statement() -> Select:
    # Built once, with bound parameters and no literals: every call reuses one compiled form.
    return (
        select(metrics.c.step, metrics.c.value, metrics.c.wall_time)
        .where(metrics.c.run_id == bindparam("run_id"), metrics.c.key == bindparam("key"))
        .order_by(metrics.c.step)
    )


def _driver_rows(conn: Connection, stmt: Any, params: dict[str, Any] | None = None) -> list:
    """The driver's own row tuples. SQLAlchemy still compiles the statement (its cache, the
    dialect's paramstyle); skipping its Row object per point saves about a fifth of a
    10,000-point read, and these columns (ints, floats, text) need no result processing."""
    result = conn.execute(stmt, params or {})
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def metric_series(db: Engine, run_id: int, key: str) -> MetricSeries:
    """Every point of one metric of one run, as arrays (empty arrays if there is none)."""
    with reading(db) as conn:
        rows = _driver_rows(conn, _series_statement(), {"run_id": run_id, "key": key})
    # One float64 block (NULL → NaN; steps exact below 2**53), then columns: cheaper than
    # three Python-level passes over the rows.
    block = np.array(rows, dtype=np.float64).reshape(len(rows), 3)
    return MetricSeries(
        run_id=run_id,
        key=key,
        steps=block[:, 0].astype(np.int64),
        values=np.ascontiguousarray(block[:, 1]),
        wall_times=np.ascontiguousarray(block[:, 2]),
    )


def metric_history(
    db: Engine, run_ids: Iterable[int], keys: Iterable[str] | None = None
) -> pd.DataFrame:
    """All points of the runs (and keys): columns run_id, key, step, value, wall_time."""
    stmt = select(*(metrics.c[c] for c in HISTORY_COLUMNS)).where(
        metrics.c.run_id.in_(list(run_ids))
    )
    if keys is not None:
        stmt = stmt.where(metrics.c.key.in_(list(keys)))
    stmt = stmt.order_by(metrics.c.run_id, metrics.c.key, metrics.c.step)
    with reading(db) as conn:
        rows = _driver_rows(conn, stmt)
    # Column-wise construction: pandas inspects each row tuple otherwise (~4x slower).
    if not rows:
        return pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
    return pd.DataFrame(dict(zip(HISTORY_COLUMNS, zip(*rows, strict=True), strict=True)))


def metric_keys(db: Engine, run_ids: Iterable[int]) -> list[str]:
    with reading(db) as conn:
        rows = conn.execute(
            select(run_summaries.c.key).where(run_summaries.c.run_id.in_(list(run_ids))).distinct()
        ).all()
    return sorted(r[0] for r in rows)
