"""Metric points and the per-run summary kept beside them, read back as series and histories.
Writes (bulk upserts): db/writes/metrics.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, bindparam, func, select

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


@cache
def _lean_statement() -> Select:
    return (
        select(
            metrics.c.run_id,
            metrics.c.step,
            metrics.c.value,
            func.coalesce(metrics.c.wall_time, 0.0),
        )
        .where(
            metrics.c.run_id.in_(bindparam("run_ids", expanding=True)),
            metrics.c.key == bindparam("key"),
            # NULL is a logged NaN: nothing a chart can draw.
            metrics.c.value.is_not(None),
        )
        .order_by(metrics.c.run_id, metrics.c.step)
    )


def drawable_series(db: Engine, run_ids: Iterable[int], key: str) -> list[MetricSeries]:
    """One metric of many runs as arrays, one MetricSeries per run that has points, in run id
    order; logged NaNs are left out. What a chart reads before it downsamples: one query of bare
    numbers, no DataFrame of the whole history (100 runs × 10,000 steps: 1,000,000 rows that
    would cost a DataFrame ~2 s to build)."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return []
    with reading(db) as conn:
        rows = _driver_rows(conn, _lean_statement(), {"run_ids": ids, "key": key})
    # No NULL is left in these rows, so one flat float64 pass (3x cheaper than np.array of
    # the tuples); ids and steps are exact below 2**53.
    block = np.fromiter(chain.from_iterable(rows), np.float64, count=4 * len(rows))
    block = block.reshape(len(rows), 4)
    # Rows come ordered by run, then step: each run is one contiguous stretch.
    bounds = np.flatnonzero(np.diff(block[:, 0])) + 1
    return [
        MetricSeries(
            run_id=int(part[0, 0]),
            key=key,
            steps=part[:, 1].astype(np.int64),
            values=np.ascontiguousarray(part[:, 2]),
            wall_times=np.ascontiguousarray(part[:, 3]),
        )
        for part in np.split(block, bounds)
        if len(part)
    ]


def series_versions(
    db: Engine, run_ids: Iterable[int], key: str
) -> dict[int, tuple[float, float, float, float]]:
    """Per run with a (non-NaN) point of `key`: its summary (last step, last value, min, max),
    which changes whenever a point is added or rewritten: a cheap key for a cached drawing."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return {}
    s = run_summaries.c
    stmt = select(s.run_id, s.last_step, s.last_value, s.min_value, s.max_value).where(
        s.run_id.in_(ids), s.key == key
    )
    with reading(db) as conn:
        rows = conn.execute(stmt).all()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def metric_keys(db: Engine, run_ids: Iterable[int]) -> list[str]:
    with reading(db) as conn:
        rows = conn.execute(
            select(run_summaries.c.key).where(run_summaries.c.run_id.in_(list(run_ids))).distinct()
        ).all()
    return sorted(r[0] for r in rows)
