"""Run reads: one run, lists, counts, the engine's views of active, cancelled and stale runs.
The lifecycle's writes (create, claim, heartbeat, cancel, finish) are db/writes/runs.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, and_, bindparam, func, or_, select

from db.models import (
    RUN_STATUSES,
    datasets,
    run_summaries,
    run_tags,
    runs,
)
from db.records import RunRecord
from db.session import reading, utcnow

_RUN_COLUMNS = [c for c in runs.c]


def _select_runs() -> Select:
    # Outer: an SDK run may have no dataset.
    return select(*_RUN_COLUMNS, datasets.c.name.label("dataset_name")).outerjoin(
        datasets, datasets.c.id == runs.c.dataset_id
    )


_RECORD_FIELDS = tuple(f for f in RunRecord.__dataclass_fields__ if f not in ("summary", "tags"))
# Expanding IN parameters: compiled and cached once, not one bound literal per id per call.
_IDS = bindparam("ids", expanding=True)
_TAGS_OF = (
    select(run_tags.c.run_id, run_tags.c.tag)
    .where(run_tags.c.run_id.in_(_IDS))
    .order_by(run_tags.c.tag)
)
_SUMMARIES_OF = select(
    run_summaries.c.run_id,
    run_summaries.c.key,
    run_summaries.c.last_value,
    run_summaries.c.last_step,
    run_summaries.c.min_value,
    run_summaries.c.max_value,
).where(run_summaries.c.run_id.in_(_IDS))


def _record(
    row: Any, summary: dict[str, dict[str, float]] | None = None, tags: list[str] | None = None
) -> RunRecord:
    values = row._mapping
    fields = {c: values[c] for c in _RECORD_FIELDS}
    fields["notes"] = fields["notes"] or ""
    return RunRecord(**fields, summary=summary or {}, tags=tags or [])


def _tags(conn: Any, run_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {rid: [] for rid in run_ids}
    if run_ids:
        for run_id, tag in conn.execute(_TAGS_OF, {"ids": run_ids}).all():
            out[run_id].append(tag)
    return out


def _summaries(conn: Any, run_ids: list[int]) -> dict[int, dict[str, dict[str, float]]]:
    out: dict[int, dict[str, dict[str, float]]] = {rid: {} for rid in run_ids}
    if not run_ids:
        return out
    rows = conn.execute(_SUMMARIES_OF, {"ids": run_ids}).all()
    for run_id, key, last, step, low, high in rows:
        out[run_id][key] = {"last": last, "step": step, "min": low, "max": high}
    return out


def get_run(db: Engine, run_id: int) -> RunRecord | None:
    with reading(db) as conn:
        row = conn.execute(_select_runs().where(runs.c.id == run_id)).first()
        if row is None:
            return None
        return _record(row, _summaries(conn, [run_id])[run_id], _tags(conn, [run_id])[run_id])


def list_runs(
    db: Engine,
    *,
    statuses: Iterable[str] | None = None,
    dataset_ids: Iterable[int] | None = None,
    name_contains: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> list[RunRecord]:
    """Newest first, each with its summary metrics (read from run_summaries, never metrics)."""
    stmt = _select_runs().order_by(runs.c.created_at.desc(), runs.c.id.desc())
    if statuses:
        bad = set(statuses) - set(RUN_STATUSES)
        if bad:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {sorted(bad)}")
        stmt = stmt.where(runs.c.status.in_(list(statuses)))
    if dataset_ids:
        stmt = stmt.where(runs.c.dataset_id.in_(list(dataset_ids)))
    if name_contains:
        # icontains: SQLite's LIKE ignores case, PostgreSQL's does not; ILIKE/lower() agree.
        stmt = stmt.where(runs.c.name.icontains(name_contains, autoescape=True))
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    with reading(db) as conn:
        rows = conn.execute(stmt).all()
        ids = [r.id for r in rows]
        summaries, tags = _summaries(conn, ids), _tags(conn, ids)
    return [_record(r, summaries[r.id], tags[r.id]) for r in rows]


def count_runs_by_status(db: Engine) -> dict[str, int]:
    with reading(db) as conn:
        rows = conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)).all()
    counts = {s: 0 for s in RUN_STATUSES}
    counts.update({status: n for status, n in rows})
    return counts


def active_run_ids(db: Engine, worker_id: str | None = None) -> list[int]:
    stmt = select(runs.c.id).where(runs.c.status == "running")
    if worker_id is not None:
        stmt = stmt.where(runs.c.worker_id == worker_id)
    with reading(db) as conn:
        return [r[0] for r in conn.execute(stmt).all()]


def cancel_requested_ids(db: Engine, run_ids: Iterable[int]) -> set[int]:
    ids = list(run_ids)
    if not ids:
        return set()
    with reading(db) as conn:
        rows = conn.execute(
            select(runs.c.id).where(runs.c.id.in_(ids), runs.c.cancel_requested.is_(True))
        ).all()
    return {r[0] for r in rows}


def heartbeat_age_s(record: RunRecord, now: datetime | None = None) -> float | None:
    if record.heartbeat_at is None:
        return None
    return ((now or utcnow()) - record.heartbeat_at).total_seconds()


def _stale(heartbeat_timeout_s: float, exclude_ids: Iterable[int] = ()) -> Any:
    cutoff = utcnow() - timedelta(seconds=heartbeat_timeout_s)
    return and_(
        runs.c.status == "running",
        or_(runs.c.heartbeat_at.is_(None), runs.c.heartbeat_at < cutoff),
        runs.c.id.not_in(list(exclude_ids)),
    )


def stale_run_ids(
    db: Engine, *, heartbeat_timeout_s: float, exclude_ids: Iterable[int] = ()
) -> list[int]:
    """`running` runs whose heartbeat is older than the timeout (read only)."""
    with reading(db) as conn:
        stmt = select(runs.c.id).where(_stale(heartbeat_timeout_s, exclude_ids)).order_by(runs.c.id)
        return [r[0] for r in conn.execute(stmt).all()]


def count_queued_runs(db: Engine) -> int:
    with reading(db) as conn:
        return conn.execute(select(func.count()).where(runs.c.status == "queued")).scalar_one()
