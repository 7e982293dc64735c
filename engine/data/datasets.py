"""Dataset ingest: validate an upload, type its columns, store it atomically.

A dataset is stored as `datasets/<uuid>/data.parquet` plus its schema (in the DB row and in
`schema.json`). Ingest writes to a temp folder, renames it into place, then inserts the row;
any failure removes the folder, so a bad upload leaves nothing behind. Reading the upload is
engine/data/tables.py, typing its columns engine/data/columns.py, loading it back
engine/data/stored.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from db import dataset_versions as version_store
from db import datasets as dataset_store
from db.records import DatasetRecord
from db.writes import datasets as dataset_writes
from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.columns import build_schema, propose_target, target_concern
from engine.data.file_kind import check_image_zip
from engine.data.images import ingest_image_zip
from engine.data.staging import staged_dataset
from engine.data.tables import IMAGE_ZIP_SUFFIXES, read_table
from engine.data.text import drop_rows_without_text, resolve_kind, text_summary


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DatasetError("Give the dataset a name.")
    if len(name) > 100:
        raise DatasetError(f"Dataset names are at most 100 characters; this one has {len(name)}.")
    if "@" in name:
        # NAME@N means version N of NAME (runs submit --dataset, the versions' CLI).
        raise DatasetError(
            f"Dataset names cannot contain '@' (NAME@N means version N); rename {name!r}, "
            "e.g. with '-' instead."
        )
    return name


def _shown_columns(columns: list[str]) -> str:
    return ", ".join(columns[:30]) + (" …" if len(columns) > 30 else "")


def _resolve_target(frame: pd.DataFrame, target: str | None, filename: str) -> str:
    columns = list(frame.columns)
    if not target:
        # Never the last column by default: that trained "predict the year" on a penguins table.
        proposed = propose_target(columns)
        if proposed is None:
            raise DatasetError(
                f"{filename} has no column named like a target (target, label, class, y, "
                "outcome, …), so Seedlab does not guess which one to predict. Name it with "
                f"--target; the columns are: {_shown_columns(columns)}."
            )
        return proposed
    if target in columns:
        return target
    folded = {c.lower(): c for c in columns}
    if target.strip().lower() in folded:
        return folded[target.strip().lower()]
    raise DatasetError(
        f"Target column {target!r} is not in {filename}. Its columns are: "
        f"{_shown_columns(columns)}."
    )


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Types Parquet stores faithfully: mixed object columns become strings."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            out[col] = series.map(lambda v: None if pd.isna(v) else str(v)).astype("string")
    return out


def store_frame(
    settings: Settings,
    db: Engine,
    frame: pd.DataFrame,
    *,
    name: str,
    target: str | None,
    filename: str,
    sha256: str,
    kind: str = "auto",
    text_column: str | None = None,
    owner: str | None = None,
    strict_target: bool = False,
) -> DatasetRecord:
    """Validate a parsed table and store it atomically; returns the new dataset's record.

    kind auto makes a table whose content is one free-text column a text dataset
    (engine/data/text.py); tabular or text force it. No target: the column named like one
    (columns.propose_target) or a refusal. A target that looks like an identifier, a date or
    free text (columns.target_concern) is stored with the warning in its schema
    (`target_warnings`), or refused with strict_target (`seedlab datasets add` without --force).
    """
    name = _check_name(name)
    if dataset_store.dataset_name_exists(db, name):
        raise DatasetError(f"A dataset named {name!r} already exists. Choose another name.")
    target = _resolve_target(frame, target, filename)
    concern = target_concern(frame, target)
    if concern is not None and strict_target:
        raise DatasetError(
            f"{concern.message} Nothing was stored; add --force to store it with this target."
        )
    kind, text_column = resolve_kind(frame, target, kind, text_column, filename)
    dropped_text = 0
    if text_column is not None:
        frame, dropped_text = drop_rows_without_text(frame, text_column, filename)
    frame, schema = build_schema(frame, target, filename, text_column=text_column)
    if text_column is not None:
        schema.update(text_summary(frame, text_column, dropped_text))
    schema["source_filename"] = filename
    schema["target_warnings"] = [concern.as_dict()] if concern is not None else []

    with staged_dataset(settings) as stage:
        _canonical(frame).to_parquet(stage.tmp / "data.parquet", index=False)
        (stage.tmp / "schema.json").write_text(json.dumps(schema, indent=2))
        return stage.publish(
            db,
            name=name,
            kind=kind,
            task=schema["task"],
            target=target,
            schema=schema,
            n_rows=len(frame),
            n_columns=frame.shape[1],
            sha256=sha256,
            source_filename=filename,
            owner=owner,
        )


def _check_size(settings: Settings, size: int, filename: str) -> None:
    if size > settings.max_upload_mb * 1024 * 1024:
        raise DatasetError(
            f"{filename} is {size / 1e6:,.1f} MB; the upload limit is {settings.max_upload_mb} MB "
            "(SEEDLAB_MAX_UPLOAD_MB)."
        )


def ingest_bytes(
    settings: Settings,
    db: Engine,
    raw: bytes,
    *,
    filename: str,
    name: str,
    target: str | None,
    kind: str = "auto",
    text_column: str | None = None,
    owner: str | None = None,
    strict_target: bool = False,
) -> DatasetRecord:
    """The upload path shared by the Datasets page and `seedlab datasets add`."""
    _check_size(settings, len(raw), filename)
    _check_name(name)
    if Path(filename).suffix.lower() in IMAGE_ZIP_SUFFIXES:
        return _ingest_image_zip(settings, db, raw, filename, name, owner)
    frame = read_table(raw, filename)
    return store_frame(
        settings,
        db,
        frame,
        name=name,
        target=target,
        filename=filename,
        sha256=hashlib.sha256(raw).hexdigest(),
        kind=kind,
        text_column=text_column,
        owner=owner,
        strict_target=strict_target,
    )


def ingest_file(
    settings: Settings,
    db: Engine,
    path: Path,
    *,
    name: str | None,
    target: str | None,
    kind: str = "auto",
    text_column: str | None = None,
    owner: str | None = None,
    strict_target: bool = False,
) -> DatasetRecord:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"No such file: {path}")
    _check_size(settings, path.stat().st_size, path.name)  # before reading it into memory
    if path.suffix.lower() in IMAGE_ZIP_SUFFIXES:
        return _ingest_image_zip(settings, db, path, path.name, name or path.stem, owner)
    return ingest_bytes(
        settings,
        db,
        path.read_bytes(),
        filename=path.name,
        name=name or path.stem,
        target=target,
        kind=kind,
        text_column=text_column,
        owner=owner,
        strict_target=strict_target,
    )


def _ingest_image_zip(
    settings: Settings,
    db: Engine,
    source: bytes | Path,
    filename: str,
    name: str,
    owner: str | None = None,
) -> DatasetRecord:
    check_image_zip(source, filename)  # a workbook, an image or a CSV named .zip says so
    digest = hashlib.sha256()
    if isinstance(source, bytes):
        digest.update(source)
    else:
        with source.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return ingest_image_zip(
        settings,
        db,
        source,
        filename=filename,
        name=_check_name(name),
        sha256=digest.hexdigest(),
        owner=owner,
    )


def delete_dataset(settings: Settings, db: Engine, record: DatasetRecord) -> None:
    if dataset_store.count_runs_using(db, record.id):
        raise DatasetError(f"Dataset {record.name!r} is used by runs; delete those runs first.")
    # Every version's base goes with it (a new upload made a version with its own folder).
    bases = {record.path} | {v.base_path for v in version_store.list_versions(db, record.id)}
    dataset_writes.delete_dataset(db, record.id)
    for base in bases:
        shutil.rmtree(settings.resolve(base), ignore_errors=True)
