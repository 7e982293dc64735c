"""Metric points and the per-run summary kept beside them, read back as series and histories.
Writes (bulk upserts): db/writes/metrics.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, TextClause, bindparam, select, text

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


# Finite values only: NULL is a logged NaN, and ±inf (stored as such) cannot be drawn.
_FINITE = "value IS NOT NULL AND value BETWEEN :lowest AND :highest"
_FINITE_PARAMS = {"lowest": -np.finfo(np.float64).max, "highest": np.finfo(np.float64).max}


@cache
def _extent_statement() -> TextClause:
    # The primary key's index alone (run_id, key, step) answers this: no row is read.
    return text(
        "SELECT run_id, count(*), min(step), max(step) FROM metrics "
        "WHERE run_id IN :run_ids AND key = :key GROUP BY run_id"
    ).bindparams(bindparam("run_ids", expanding=True))


@cache
def _whole_statement() -> TextClause:
    return text(
        "SELECT run_id, step, value, wall_time FROM metrics "
        f"WHERE run_id IN :run_ids AND key = :key AND {_FINITE} ORDER BY run_id, step"
    ).bindparams(bindparam("run_ids", expanding=True))


@cache
def _buckets_statement() -> TextClause:
    # Per stretch of `width` steps, the step of its lowest and of its highest finite point
    # (ties: the earlier), each a range of the primary key's index sorted by value: a few
    # dozen rows per sort, where a GROUP BY or a window function sorts every point of every
    # run at once. Then the series' first and last finite points (a walk along the index from
    # either end), and the rows of all the picked steps, looked up by key.
    in_run = "FROM metrics WHERE run_id = :run_id AND key = :key AND " + _FINITE
    in_bucket = f"{in_run} AND step >= :start + i * :width AND step < :start + (i + 1) * :width"
    return text(
        "WITH RECURSIVE buckets(i) AS ("
        " SELECT 0 UNION ALL SELECT i + 1 FROM buckets WHERE i + 1 < :buckets),"
        " picks(step) AS ("
        f" SELECT (SELECT step {in_bucket} ORDER BY value, step LIMIT 1) FROM buckets"
        f" UNION SELECT (SELECT step {in_bucket} ORDER BY value DESC, step LIMIT 1) FROM buckets"
        f" UNION SELECT (SELECT step {in_run} ORDER BY step LIMIT 1)"
        f" UNION SELECT (SELECT step {in_run} ORDER BY step DESC LIMIT 1))"
        " SELECT m.step, m.value, m.wall_time FROM picks JOIN metrics m"
        " ON m.run_id = :run_id AND m.key = :key AND m.step = picks.step"
        " ORDER BY m.step"
    )


def downsampled_series(
    db: Engine, run_ids: Iterable[int], key: str, max_points: int
) -> list[MetricSeries]:
    """One metric of many runs, at most `max_points` finite points per run, chosen in SQL: a
    series of no more points comes back whole (less its NaNs and infinities); a longer one as
    its first and last finite points and the lowest and highest point of each of
    (max_points - 2) // 2 equal stretches of its steps, so spikes and the extremes survive
    (stretches a sparse series leaves empty cost nothing). One MetricSeries per run with
    finite points, in run id order.

    Only the points drawn leave the database: 100 runs × 10,000 steps send 50,000 rows to
    Python, not 1,000,000. Nothing is stored beside the points, so a running run's new points
    are in the next call, on SQLite and PostgreSQL alike (plain SQL: a recursive CTE,
    correlated subqueries with LIMIT).
    """
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4; got {max_points}")
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return []
    buckets = (max_points - 2) // 2
    picked: dict[int, list] = {}
    with reading(db) as conn:
        extents = conn.execute(_extent_statement(), {"run_ids": ids, "key": key}).all()
        whole = [run_id for run_id, count, _, _ in extents if count <= max_points]
        if whole:
            params = {"run_ids": whole, "key": key, **_FINITE_PARAMS}
            for run_id, *point in _driver_rows(conn, _whole_statement(), params):
                picked.setdefault(run_id, []).append(point)
        for run_id, count, start, stop in extents:
            if count <= max_points:
                continue
            width = -(-(stop - start + 1) // buckets)  # rounded up: the stretches cover all
            params = {
                "run_id": run_id,
                "key": key,
                "start": start,
                "width": width,
                "buckets": -(-(stop - start + 1) // width),
                **_FINITE_PARAMS,
            }
            rows = _driver_rows(conn, _buckets_statement(), params)
            if rows:
                picked[run_id] = rows
    return [_series(run_id, key, picked[run_id]) for run_id in sorted(picked)]


def _series(run_id: int, key: str, rows: list) -> MetricSeries:
    block = np.array(rows, dtype=np.float64).reshape(len(rows), 3)
    return MetricSeries(
        run_id=run_id,
        key=key,
        steps=block[:, 0].astype(np.int64),
        values=np.ascontiguousarray(block[:, 1]),
        wall_times=np.ascontiguousarray(block[:, 2]),
    )
