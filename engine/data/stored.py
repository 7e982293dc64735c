"""A stored dataset's files, read back: the table (Parquet) and its first rows. Pure: takes the
record the database returned (anything with the fields of StoredDataset), never the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow.parquet as pq

from engine.core.errors import DatasetError
from engine.core.settings import Settings


class StoredDataset(Protocol):
    """A dataset as stored (db.records.DatasetRecord fits)."""

    id: int
    name: str
    kind: str
    schema: dict[str, Any]
    path: str


def data_file(settings: Settings, record: StoredDataset) -> Path:
    path = settings.resolve(record.path) / "data.parquet"
    if not path.is_file():
        raise DatasetError(
            f"The files of dataset {record.name!r} are missing ({path}). "
            "Upload the dataset again, or restore SEEDLAB_HOME from a backup."
        )
    return path


def load_frame(
    settings: Settings, record: StoredDataset, columns: list[str] | None = None
) -> pd.DataFrame:
    """The stored table (or only some of its columns: Parquet reads just those)."""
    return pd.read_parquet(data_file(settings, record), columns=columns)


def preview(settings: Settings, record: StoredDataset, rows: int = 20) -> pd.DataFrame:
    """The first rows, read from the first record batch only (not the whole file)."""
    parquet = pq.ParquetFile(data_file(settings, record))
    batch = next(parquet.iter_batches(batch_size=rows), None)
    if batch is None:
        return parquet.schema_arrow.empty_table().to_pandas()
    return batch.to_pandas()
