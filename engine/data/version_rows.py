"""A dataset version as the database holds it, turned into what readers take (a
VersionedDataset: base files + patch). Shared by the services, the runner and the loaders of a
finished run (engine/deploy), which must all read the exact version a run trained on."""

from __future__ import annotations

from sqlalchemy import Engine

from db import dataset_versions as version_store
from db import datasets as dataset_store
from db.records import DatasetRecord, DatasetVersionRecord
from db.writes.dataset_versions import version_digest
from engine.core.errors import DatasetError
from engine.data.versions import VersionedDataset, empty_patch


def first_version(dataset: DatasetRecord) -> DatasetVersionRecord:
    """Version 1 of a dataset whose row has none stored (written by code from before
    versions): its files as they are."""
    return DatasetVersionRecord(
        id=0,
        dataset_id=dataset.id,
        number=1,
        parent_number=None,
        digest=version_digest(dataset.sha256, empty_patch()),
        note="",
        created_by=dataset.owner,
        created_at=dataset.created_at,
        n_rows=dataset.n_rows,
        class_counts=dict(dataset.schema.get("class_counts") or {}),
        diff={"added": dataset.n_rows, "removed": 0, "relabelled": 0},
        base_path=dataset.path,
        patch=empty_patch(),
    )


def versions_of(db: Engine, dataset: DatasetRecord) -> list[DatasetVersionRecord]:
    """Oldest first; never empty."""
    return version_store.list_versions(db, dataset.id) or [first_version(dataset)]


def version_of(db: Engine, dataset: DatasetRecord, number: int | None) -> DatasetVersionRecord:
    """Version `number` (None: the latest), or a DatasetError naming the versions there are."""
    versions = versions_of(db, dataset)
    if number is None:
        return versions[-1]
    for version in versions:
        if version.number == number:
            return version
    raise DatasetError(
        f"Dataset {dataset.name!r} has no version {number}; its versions are "
        f"1 to {versions[-1].number}. `seedlab datasets versions {dataset.name}` lists them."
    )


def view(dataset: DatasetRecord, version: DatasetVersionRecord) -> VersionedDataset:
    """What the pipeline and readers take: the version's base files and its patch."""
    return VersionedDataset(
        id=dataset.id,
        name=dataset.name,
        kind=dataset.kind,
        schema=version.base_schema or dataset.schema,
        path=version.base_path,
        version=version.number,
        patch=version.patch,
    )


def stored_version(db: Engine, dataset_id: int, number: int | None) -> VersionedDataset:
    """A run's data: version `number` (None: a run from before versions, i.e. version 1)."""
    dataset = dataset_store.get_dataset(db, dataset_id)
    if dataset is None:
        raise DatasetError(f"The run's dataset (id {dataset_id}) no longer exists.")
    return view(dataset, version_of(db, dataset, number or 1))
