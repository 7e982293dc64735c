"""Dataset rows. A row exists only for a fully validated dataset already in its final place.
Writes: db/writes/datasets.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from db.models import datasets, runs
from db.records import DatasetRecord
from db.session import reading


class DuplicateDatasetName(ValueError):
    pass


def _record(row: Any) -> DatasetRecord:
    return DatasetRecord(**{c: getattr(row, c) for c in DatasetRecord.__dataclass_fields__})


def dataset_name_exists(db: Engine, name: str) -> bool:
    with reading(db) as conn:
        return (
            conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first() is not None
        )


def get_dataset(db: Engine, dataset_id: int) -> DatasetRecord | None:
    with reading(db) as conn:
        row = conn.execute(select(datasets).where(datasets.c.id == dataset_id)).first()
    return None if row is None else _record(row)


def get_dataset_by_name(db: Engine, name: str) -> DatasetRecord | None:
    with reading(db) as conn:
        row = conn.execute(select(datasets).where(datasets.c.name == name)).first()
    return None if row is None else _record(row)


def list_datasets(db: Engine) -> list[DatasetRecord]:
    with reading(db) as conn:
        rows = conn.execute(select(datasets).order_by(datasets.c.created_at, datasets.c.id)).all()
    return [_record(r) for r in rows]


def count_runs_using(db: Engine, dataset_id: int) -> int:
    with reading(db) as conn:
        return conn.execute(
            select(func.count()).select_from(runs).where(runs.c.dataset_id == dataset_id)
        ).scalar_one()
