"""Dataset rows. A row exists only for a fully validated dataset already in its final place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from db.models import datasets, runs
from db.records import DatasetRecord
from db.session import reading, utcnow, writing


class DuplicateDatasetName(ValueError):
    pass


def _record(row: Any) -> DatasetRecord:
    return DatasetRecord(**{c: getattr(row, c) for c in DatasetRecord.__dataclass_fields__})


def insert_dataset(
    db: Engine,
    *,
    name: str,
    kind: str,
    task: str,
    target: str,
    schema: dict[str, Any],
    n_rows: int,
    n_columns: int,
    sha256: str,
    path: str,
    source_filename: str,
    owner: str | None = None,
) -> DatasetRecord:
    values = dict(
        name=name,
        kind=kind,
        task=task,
        target=target,
        schema=schema,
        n_rows=n_rows,
        n_columns=n_columns,
        sha256=sha256,
        path=path,
        source_filename=source_filename,
        created_at=utcnow(),
        owner=owner,
    )
    try:
        with writing(db) as conn:
            new_id = conn.execute(insert(datasets).values(**values)).inserted_primary_key[0]
    except IntegrityError as exc:
        if dataset_name_exists(db, name):
            raise DuplicateDatasetName(name) from exc
        raise
    return DatasetRecord(id=new_id, **values)


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


def delete_dataset(db: Engine, dataset_id: int) -> bool:
    """Delete the row (callers remove the files). Refused by the FK while runs use it."""
    with writing(db) as conn:
        return conn.execute(delete(datasets).where(datasets.c.id == dataset_id)).rowcount > 0
