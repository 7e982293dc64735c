"""Adding dataset versions (never changing one: versions are immutable). Reads:
db/dataset_versions.py."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from db.models import dataset_versions
from db.records import DatasetVersionRecord
from db.session import utcnow, writing

EMPTY_PATCH: dict[str, Any] = {"excluded": [], "labels": {}}


class VersionConflict(RuntimeError):
    """Someone else saved a version of the same dataset first."""


def version_digest(base_digest: str, patch: dict[str, Any]) -> str:
    """sha256 of the base file's digest + the canonical JSON patch: equal content, equal digest."""
    canonical = json.dumps(patch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{base_digest}\n{canonical}".encode()).hexdigest()


def insert_version_in(conn: Connection, **values: Any) -> DatasetVersionRecord:
    """Insert inside an open transaction (insert_dataset adds version 1 with its dataset)."""
    values.setdefault("created_at", utcnow())
    values.setdefault("note", "")
    values.setdefault("base_schema", None)
    values.setdefault("base_sha256", None)
    new_id = conn.execute(insert(dataset_versions).values(**values)).inserted_primary_key[0]
    return DatasetVersionRecord(id=new_id, **values)


def add_version(
    db: Engine,
    *,
    dataset_id: int,
    parent_number: int | None,
    digest: str,
    note: str,
    created_by: str | None,
    n_rows: int,
    class_counts: dict[str, int],
    diff: dict[str, int],
    base_path: str,
    patch: dict[str, Any],
    base_schema: dict[str, Any] | None = None,
    base_sha256: str | None = None,
) -> DatasetVersionRecord:
    """Version latest+1. Refused (VersionConflict) when the latest is no longer `parent_number`:
    two editors of one dataset never silently overwrite each other's changes."""
    with writing(db) as conn:
        latest = conn.execute(
            select(func.max(dataset_versions.c.number)).where(
                dataset_versions.c.dataset_id == dataset_id
            )
        ).scalar_one()
        if latest != parent_number:
            raise VersionConflict(
                f"Version {latest} was saved while you edited version {parent_number}. "
                "Reload the dataset and make your changes again."
            )
        return insert_version_in(
            conn,
            dataset_id=dataset_id,
            number=(latest or 0) + 1,
            parent_number=parent_number,
            digest=digest,
            note=note,
            created_by=created_by,
            n_rows=n_rows,
            class_counts=class_counts,
            diff=diff,
            base_path=base_path,
            patch=patch,
            base_schema=base_schema,
            base_sha256=base_sha256,
        )


def delete_versions(db: Engine, dataset_id: int, numbers: list[int]) -> int:
    """Remove versions whose data a clean-up deleted (no run used them; a newer one exists)."""
    if not numbers:
        return 0
    with writing(db) as conn:
        return conn.execute(
            delete(dataset_versions).where(
                dataset_versions.c.dataset_id == dataset_id,
                dataset_versions.c.number.in_(numbers),
            )
        ).rowcount
