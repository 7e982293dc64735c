"""Bulk writes for synthetic load (`seedlab demo fill`): many finished runs in few transactions.

Rows go through the driver's executemany with positional tuples on SQLite (building a dict per
metric point and letting SQLAlchemy map it costs more than SQLite's insert itself at millions of
rows), and through COPY on PostgreSQL, its bulk-load path (one stream instead of a statement
per row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, insert

from db.models import metrics, run_summaries, run_tags, runs
from db.session import writing

METRIC_COLUMNS = ("run_id", "key", "step", "value", "wall_time")


def _placeholders(conn: Connection, n: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * n)


def _insert_tuples(conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple]) -> None:
    if rows and conn.dialect.name == "postgresql":
        # The DBAPI cursor of this same connection, so the COPY is part of the transaction.
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if rows:
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({_placeholders(conn, len(columns))})"
        )
        conn.exec_driver_sql(sql, rows)


def insert_finished_runs(
    db: Engine,
    run_rows: list[dict[str, Any]],
    tags: list[list[str]],
    points: Iterable[list[tuple[str, int, float, float]]],
) -> list[int]:
    """Insert runs (dicts of `runs` columns), their tags, metric points and summaries in one
    transaction; returns the new ids. `points` yields one list of (key, step, value, wall_time)
    per run, so a caller can generate them lazily."""
    with writing(db) as conn:
        # RETURNING in parameter order: the new ids line up with run_rows on SQLite and PostgreSQL.
        returned = conn.execute(
            insert(runs).returning(runs.c.id, sort_by_parameter_order=True), run_rows
        )
        ids = [r[0] for r in returned.all()]
        _insert_tuples(
            conn,
            run_tags,
            ("run_id", "tag"),
            [(i, t) for i, ts in zip(ids, tags, strict=True) for t in dict.fromkeys(ts)],
        )
        metric_rows: list[tuple] = []
        summary_rows: list[tuple] = []
        for run_id, run_points in zip(ids, points, strict=True):
            latest: dict[str, list[float]] = {}
            for key, step, value, wall in run_points:
                metric_rows.append((run_id, key, step, value, wall))
                entry = latest.get(key)
                if entry is None:
                    latest[key] = [value, step, value, value]
                    continue
                if step >= entry[1]:
                    entry[0], entry[1] = value, step
                entry[2], entry[3] = min(entry[2], value), max(entry[3], value)
            summary_rows += [(run_id, k, *v) for k, v in latest.items()]
            if len(metric_rows) >= 200_000:
                _insert_tuples(conn, metrics, METRIC_COLUMNS, metric_rows)
                metric_rows = []
        _insert_tuples(conn, metrics, METRIC_COLUMNS, metric_rows)
        _insert_tuples(
            conn,
            run_summaries,
            ("run_id", "key", "last_value", "last_step", "min_value", "max_value"),
            summary_rows,
        )
    return ids
