"""All-or-nothing dataset storage: write into a temp folder, rename it, then insert the row.

Every ingest path (tables, text, image ZIPs) goes through here, so a failure at any point
leaves neither a folder nor a row behind.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db import datasets as dataset_store
from db.records import DatasetRecord
from db.writes import datasets as dataset_writes
from engine.core.errors import DatasetError
from engine.core.settings import Settings


@dataclass(frozen=True)
class StagedDataset:
    settings: Settings
    tmp: Path  # write the dataset's files here
    final: Path

    def publish(self, db: Engine, *, name: str, **fields: Any) -> DatasetRecord:  # noqa: ANN401
        """Move the files into place and insert the dataset's row (its path is set here)."""
        self.tmp.rename(self.final)
        try:
            return dataset_writes.insert_dataset(
                db, name=name, path=str(self.final.relative_to(self.settings.home)), **fields
            )
        except dataset_store.DuplicateDatasetName:
            raise DatasetError(
                f"A dataset named {name!r} already exists. Choose another name."
            ) from None


@contextmanager
def staged_dataset(settings: Settings) -> Iterator[StagedDataset]:
    """A fresh temp folder for a new dataset; on any error both it and the final folder go."""
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    staged = StagedDataset(
        settings,
        tmp=settings.datasets_dir / f".tmp-{uuid.uuid4().hex}",
        final=settings.datasets_dir / uuid.uuid4().hex,
    )
    try:
        staged.tmp.mkdir()
        yield staged
    except BaseException:
        shutil.rmtree(staged.tmp, ignore_errors=True)
        shutil.rmtree(staged.final, ignore_errors=True)
        raise
