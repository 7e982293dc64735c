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

from db.models import metric_digests, metrics, run_summaries, runs
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
    return _series(run_id, key, rows)


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


# A stored digest (db/models.SqlMetricDigest) holds this many points at most: the Run page's
# 2,000 per curve (engine/report/charts.py); Compare draws fewer, reduced from it in numpy.
DIGEST_POINTS = 2000


def bucket_width(start: int, stop: int, max_points: int) -> int:
    """The width in steps of the stretches a series over steps start..stop is drawn with at
    `max_points`: at most (max_points - 2) // 2 of them. Up to DIGEST_POINTS the width is a
    multiple of the digest's own, so each stretch is a union of the digest's: the lowest and
    highest point of a stretch are then among the digest's points, and a drawing reduced from
    a digest equals one chosen from every point (never a point more, never one missing)."""
    span = stop - start + 1
    width = -(-span // ((max_points - 2) // 2))  # rounded up: the stretches cover all
    if max_points <= DIGEST_POINTS:
        fine = -(-span // ((DIGEST_POINTS - 2) // 2))
        width = fine * -(-width // fine)
    return width


def downsampled_series(
    db: Engine, run_ids: Iterable[int], key: str, max_points: int
) -> list[MetricSeries]:
    """One metric of many runs, at most `max_points` finite points per run, chosen in SQL: a
    series of no more points comes back whole (less its NaNs and infinities); a longer one as
    its first and last finite points and the lowest and highest point of each of
    at most (max_points - 2) // 2 equal stretches of its steps (bucket_width), so spikes and
    the extremes survive (stretches a sparse series leaves empty cost nothing). One
    MetricSeries per run with finite points, in run id order.

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
    with reading(db) as conn:
        _, picked = _picks(conn, ids, key, max_points)
    return [_series(run_id, key, picked[run_id]) for run_id in sorted(picked)]


def _picks(conn: Connection, ids: list[int], key: str, max_points: int) -> tuple[list, dict]:
    """downsampled_series' reads: the series' extents (run id, count, first and last step,
    NaN rows included) and the picked rows (step, value, wall time) per run with any."""
    picked: dict[int, list] = {}
    extents = conn.execute(_extent_statement(), {"run_ids": ids, "key": key}).all()
    whole = [run_id for run_id, count, _, _ in extents if count <= max_points]
    if whole:
        params = {"run_ids": whole, "key": key, **_FINITE_PARAMS}
        for run_id, *point in _driver_rows(conn, _whole_statement(), params):
            picked.setdefault(run_id, []).append(point)
    for run_id, count, start, stop in extents:
        if count <= max_points:
            continue
        width = bucket_width(start, stop, max_points)
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
    return extents, picked


def _series(run_id: int, key: str, rows: list) -> MetricSeries:
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


def pick(steps: np.ndarray, values: np.ndarray, start: int, width: int) -> np.ndarray:
    """Indices (ascending) of what downsampled_series keeps of finite points in step order:
    the first and the last, and per stretch of `width` steps from `start` its lowest and its
    highest point (the earlier one on ties), as its SQL does, in numpy."""
    if len(steps) == 0:
        return np.zeros(0, dtype=np.int64)
    bucket = (steps - start) // width
    lowest = np.lexsort((steps, values, bucket))  # by bucket, then value, then step
    highest = np.lexsort((steps, -values, bucket))
    firsts = np.r_[True, bucket[lowest][1:] != bucket[lowest][:-1]]
    chosen = np.concatenate(([0, len(steps) - 1], lowest[firsts], highest[firsts]))
    return np.unique(chosen)


Version = tuple[float, float, float, float]  # a run's summary of a key: see series_versions


@dataclass(frozen=True)
class Digest:
    """A stored reduction of one series (db/models.SqlMetricDigest): `series` holds finite
    points only; `points`, `first_step`, `final_step` describe the whole stored series."""

    series: MetricSeries
    version: Version
    resolution: int
    points: int
    first_step: int
    final_step: int

    def drawn(self, max_points: int) -> MetricSeries:
        """What downsampled_series(…, max_points) returns for this series, from the digest
        alone (max_points at most its resolution; see bucket_width)."""
        if max_points > self.resolution:
            raise ValueError(f"a digest of {self.resolution} points cannot draw {max_points}")
        s = self.series
        if self.points <= max_points:
            return s  # then it is the whole finite series
        width = bucket_width(self.first_step, self.final_step, max_points)
        keep = pick(s.steps, s.values, self.first_step, width)
        return MetricSeries(s.run_id, s.key, s.steps[keep], s.values[keep], s.wall_times[keep])


def digest_of(series: MetricSeries, version: Version, resolution: int = DIGEST_POINTS) -> Digest:
    """The digest of a whole series (every stored point, NaN and infinities included, as
    metric_series reads it): equal to downsampled_series(…, resolution) of it."""
    n = len(series)
    first, final = (int(series.steps[0]), int(series.steps[-1])) if n else (0, 0)
    finite = np.isfinite(series.values)
    steps, values, walls = series.steps[finite], series.values[finite], series.wall_times[finite]
    if n > resolution:
        keep = pick(steps, values, first, bucket_width(first, final, resolution))
        steps, values, walls = steps[keep], values[keep], walls[keep]
    kept = MetricSeries(series.run_id, series.key, steps, values, walls)
    return Digest(kept, version, resolution, n, first, final)


def series_for_digest(db: Engine, run_ids: Iterable[int]) -> list[tuple[MetricSeries, Version]]:
    """Every series of the runs that has a summary, each with its version, in run and key
    order, read in one transaction (one snapshot: a version is the one of the points read)."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return []
    s = run_summaries.c
    with reading(db) as conn:
        summaries = conn.execute(
            select(s.run_id, s.key, s.last_step, s.last_value, s.min_value, s.max_value)
            .where(s.run_id.in_(ids))
            .order_by(s.run_id, s.key)
        ).all()
        found = []
        for run_id, key, *version in summaries:
            rows = _driver_rows(conn, _series_statement(), {"run_id": run_id, "key": key})
            found.append((_series(run_id, key, rows), tuple(version)))
    return found


def digests_in_sql(db: Engine, run_ids: Iterable[int], key: str) -> list[Digest]:
    """The runs' digests of `key` (those with a summary), their points picked in SQL as
    downsampled_series(…, DIGEST_POINTS) picks them (equal to digest_of a whole read, at about
    half its cost for long series), read with their versions in one transaction."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return []
    s = run_summaries.c
    with reading(db) as conn:
        versions = conn.execute(
            select(s.run_id, s.last_step, s.last_value, s.min_value, s.max_value).where(
                s.run_id.in_(ids), s.key == key
            )
        ).all()
        extents, picked = _picks(conn, ids, key, DIGEST_POINTS)
    grid = {run_id: (count, start, stop) for run_id, count, start, stop in extents}
    made = []
    for run_id, *version in versions:
        if run_id not in grid:
            continue
        count, start, stop = grid[run_id]
        series = _series(run_id, key, picked.get(run_id, []))
        made.append(Digest(series, tuple(version), DIGEST_POINTS, count, start, stop))
    return made


def _blob(array: np.ndarray, dtype: str) -> np.ndarray:
    return np.frombuffer(array, dtype=dtype)


def stored_digests(
    db: Engine, run_ids: Iterable[int], key: str
) -> tuple[dict[int, str], dict[int, Digest]]:
    """In one query, the runs' statuses (runs that exist) and their stored digests of `key`
    (whatever their version: the caller compares it with series_versions)."""
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return {}, {}
    d = metric_digests.c
    stmt = (
        select(
            runs.c.id,
            runs.c.status,
            d.resolution,
            d.last_step,
            d.last_value,
            d.min_value,
            d.max_value,
            d.points,
            d.first_step,
            d.final_step,
            d.step_bytes,
            d.value_bytes,
            d.wall_time_bytes,
        )
        .select_from(runs.outerjoin(metric_digests, (d.run_id == runs.c.id) & (d.key == key)))
        .where(runs.c.id.in_(ids))
    )
    with reading(db) as conn:
        rows = conn.execute(stmt).all()
    statuses: dict[int, str] = {}
    digests: dict[int, Digest] = {}
    for run_id, status, resolution, *version_etc in rows:
        statuses[run_id] = status
        if resolution is None:
            continue
        last_step, last_value, low, high, points, first, final, steps, values, walls = version_etc
        series = MetricSeries(
            run_id, key, _blob(steps, "<i8"), _blob(values, "<f8"), _blob(walls, "<f8")
        )
        version = (last_step, last_value, low, high)
        digests[run_id] = Digest(series, version, resolution, points, first, final)
    return statuses, digests
