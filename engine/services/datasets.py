"""Every change a user makes to datasets, checked and audited: upload (from the page or a file
on this machine), the demo datasets, delete. Reading and storing the data itself is
engine.data.datasets; these add who may, and the audit entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db.records import DatasetRecord
from engine.core.settings import Settings
from engine.services import audit
from engine.services.permissions import Actor, Permission, check


def upload_dataset(
    settings: Settings, db: Engine, actor: Actor, raw: bytes, **ingest: Any
) -> DatasetRecord:
    """engine.data.datasets.ingest_bytes (filename, name, target, kind, text_column) as `actor`."""
    from engine.data.datasets import ingest_bytes

    check(actor, Permission.UPLOAD)
    record = ingest_bytes(settings, db, raw, owner=actor.name, **ingest)
    audit.record(db, actor, "upload", f"dataset {record.id} {record.name}", record.kind)
    return record


def add_dataset_file(
    settings: Settings, db: Engine, actor: Actor, path: Path, **ingest: Any
) -> DatasetRecord:
    """engine.data.datasets.ingest_file as `actor` (the CLI's upload)."""
    from engine.data.datasets import ingest_file

    check(actor, Permission.UPLOAD)
    record = ingest_file(settings, db, path, owner=actor.name, **ingest)
    audit.record(db, actor, "upload", f"dataset {record.id} {record.name}", str(path))
    return record


def add_demo_datasets(settings: Settings, db: Engine, actor: Actor) -> list[str]:
    """Register the bundled demo datasets that are missing; returns the names added (one audit
    entry for them all, none when all were there)."""
    from engine.data.demo import register_demo_datasets

    check(actor, Permission.UPLOAD)
    added = register_demo_datasets(settings, db)
    if added:
        audit.record(db, actor, "upload", "demo datasets", ", ".join(added))
    return added


def delete_dataset(settings: Settings, db: Engine, actor: Actor, record: DatasetRecord) -> None:
    """Delete a dataset no run uses, with its files (its owner or an admin)."""
    from engine.data import datasets

    check(actor, Permission.DELETE, record.owner, what=f"dataset {record.name!r}")
    datasets.delete_dataset(settings, db, record)
    audit.record(db, actor, "delete", f"dataset {record.id} {record.name}")
