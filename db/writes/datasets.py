"""Adding and removing dataset rows. A row exists only for a fully validated dataset
already in its final place (engine/data/staging.py puts it there first).

Reads: db/datasets.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from db.datasets import DuplicateDatasetName, dataset_name_exists
from db.models import datasets
from db.records import DatasetRecord
from db.session import utcnow, writing
from db.writes.dataset_versions import EMPTY_PATCH, insert_version_in, version_digest


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
            # Every dataset has its version 1 from the start: its files, no patch.
            insert_version_in(
                conn,
                dataset_id=new_id,
                number=1,
                parent_number=None,
                digest=version_digest(sha256, EMPTY_PATCH),
                created_by=owner,
                created_at=values["created_at"],
                n_rows=n_rows,
                class_counts=dict(schema.get("class_counts") or {}),
                diff={"added": n_rows, "removed": 0, "relabelled": 0},
                base_path=path,
                patch=EMPTY_PATCH,
            )
    except IntegrityError as exc:
        if dataset_name_exists(db, name):
            raise DuplicateDatasetName(name) from exc
        raise
    return DatasetRecord(id=new_id, **values)


def delete_dataset(db: Engine, dataset_id: int) -> bool:
    """Delete the row (callers remove the files). Refused by the FK while runs use it."""
    with writing(db) as conn:
        return conn.execute(delete(datasets).where(datasets.c.id == dataset_id)).rowcount > 0
