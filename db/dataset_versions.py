"""Dataset versions (immutable: base data + one cumulative patch). Writes:
db/writes/dataset_versions.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from db.models import dataset_versions, runs
from db.records import DatasetVersionRecord
from db.session import reading


def _record(row: Any) -> DatasetVersionRecord:
    return DatasetVersionRecord(
        **{c: getattr(row, c) for c in DatasetVersionRecord.__dataclass_fields__}
    )


def list_versions(db: Engine, dataset_id: int) -> list[DatasetVersionRecord]:
    """Oldest first."""
    with reading(db) as conn:
        rows = conn.execute(
            select(dataset_versions)
            .where(dataset_versions.c.dataset_id == dataset_id)
            .order_by(dataset_versions.c.number)
        ).all()
    return [_record(r) for r in rows]


def get_version(db: Engine, dataset_id: int, number: int) -> DatasetVersionRecord | None:
    with reading(db) as conn:
        row = conn.execute(
            select(dataset_versions).where(
                dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.number == number
            )
        ).first()
    return None if row is None else _record(row)


def latest_version(db: Engine, dataset_id: int) -> DatasetVersionRecord | None:
    with reading(db) as conn:
        row = conn.execute(
            select(dataset_versions)
            .where(dataset_versions.c.dataset_id == dataset_id)
            .order_by(dataset_versions.c.number.desc())
            .limit(1)
        ).first()
    return None if row is None else _record(row)


def all_versions(db: Engine) -> list[DatasetVersionRecord]:
    """Every version of every dataset, by dataset and number (for disk use and clean-up)."""
    with reading(db) as conn:
        rows = conn.execute(
            select(dataset_versions).order_by(
                dataset_versions.c.dataset_id, dataset_versions.c.number
            )
        ).all()
    return [_record(r) for r in rows]


def versions_used_by_runs(db: Engine, dataset_id: int | None = None) -> dict[tuple[int, int], int]:
    """{(dataset_id, version number): how many runs trained on it}; a run from before versions
    (dataset_version NULL) counts for version 1. For clean-up: a version a run uses stays."""
    number = func.coalesce(runs.c.dataset_version, 1)
    query = (
        select(runs.c.dataset_id, number.label("number"), func.count().label("n"))
        .where(runs.c.dataset_id.is_not(None))
        .group_by(runs.c.dataset_id, number)
    )
    if dataset_id is not None:
        query = query.where(runs.c.dataset_id == dataset_id)
    with reading(db) as conn:
        return {(r.dataset_id, r.number): r.n for r in conn.execute(query).all()}
