"""Dataset ingest: validate an upload, type its columns, store it atomically, load it back.

A dataset is stored as `datasets/<uuid>/data.parquet` plus its schema (in the DB row and in
`schema.json`). Ingest writes to a temp folder, renames it into place, then inserts the row;
any failure removes the folder, so a bad upload leaves nothing behind.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from db import datasets as dataset_store
from db.records import DatasetRecord
from db.writes import datasets as dataset_writes
from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.staging import staged_dataset

TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".parquet", ".pq")
IMAGE_ZIP_SUFFIXES = (".zip",)  # a folder per class of images: engine/data/images.py
MAX_COLUMNS = 5000
# Room for a long review or article; more is an unclosed quote or a pasted blob.
MAX_CELL_CHARS = 100_000
MAX_CLASSES = 1000
# An integer column with at most this many distinct values is a category (a rating, a code).
CATEGORICAL_INT_MAX_UNIQUE = 10
# An integer target with at most this many distinct values means classification.
CLASSIFICATION_INT_MAX_UNIQUE = 20
NUMERIC_PARSE_SHARE = 0.95
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
# Column names that mark a row identifier (when every value is distinct).
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|^unnamed: \d+$", re.IGNORECASE)


# ---------------------------------------------------------------- reading


# Byte-order marks of the Unicode encodings other than UTF-8 (Excel's "Unicode Text" is
# UTF-16 LE with a BOM). UTF-32 first: its LE mark starts with UTF-16 LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode_text(raw: bytes, filename: str) -> str:
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8-sig")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{filename} is not valid {encoding.removesuffix('-sig').upper()} text "
            f"(byte 0x{raw[exc.start]:02x} on line {line:,}, position {exc.start:,}). Re-save it "
            "as UTF-8 (in Excel: Save As → 'CSV UTF-8') and upload it again."
        ) from None


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix in {".tsv", ".tab"}:
        return "\t"
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_delimited(raw: bytes, filename: str, suffix: str) -> pd.DataFrame:
    text = _decode_text(raw, filename)
    if not text.strip():
        raise DatasetError(f"{filename} is empty. Upload a file with a header row and data rows.")
    sep = _sniff_delimiter(text, suffix)
    _check_width(_header_width(text, sep), filename)
    # Semicolon-separated files come from locales that write decimals with a comma (3,14).
    decimal = "," if sep == ";" else "."
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, decimal=decimal, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{filename} has no columns. Upload a file with a header row.") from None
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0]
        separator = "tab" if sep == "\t" else repr(sep)
        raise DatasetError(
            f"{filename} could not be parsed as a {separator}-separated "
            f"table: {detail}. Check that every row has the same number of fields and that "
            "quotes are closed."
        ) from None
    return frame


def _header_width(text: str, sep: str) -> int:
    """Fields in the header row, counted without parsing the table (a million-column header
    takes pandas half a minute and gigabytes before the column cap could refuse it)."""
    end = text.find("\n", 0, 1 << 20)
    if end < 0 or '"' in text[:end]:  # no line break in the first MB, or quoted names: be exact
        return len(next(csv.reader(io.StringIO(text), delimiter=sep), []))
    return text.count(sep, 0, end) + 1


def _check_width(columns: int, filename: str) -> None:
    if columns > MAX_COLUMNS:
        raise DatasetError(
            f"{filename} has {columns:,} columns; the limit is {MAX_COLUMNS:,}. "
            "Select the columns you need and upload again."
        )


def _read_parquet(raw: bytes, filename: str) -> pd.DataFrame:
    try:
        parquet = pq.ParquetFile(io.BytesIO(raw))
        schema = parquet.schema_arrow
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise DatasetError(
            f"{filename} is not a readable Parquet file ({type(exc).__name__}). "
            "Export it again, or upload it as CSV."
        ) from None
    # Decided from the schema, before reading any row: every value counts, not a sample.
    _check_width(len(schema), filename)
    for column in schema:
        if pa.types.is_nested(column.type):
            raise DatasetError(
                f"Column {column.name!r} in {filename} holds nested values "
                f"({column.type}: lists, structs or maps). Flatten it into plain columns and "
                "upload again."
            )
    try:
        return parquet.read().to_pandas()
    except Exception as exc:
        raise DatasetError(
            f"{filename} is not a readable Parquet file ({type(exc).__name__}). "
            "Export it again, or upload it as CSV."
        ) from None


def _check_cell_lengths(frame: pd.DataFrame, filename: str) -> None:
    """A multi-megabyte cell is an unclosed quote or a pasted blob, never one example; it would
    also land in the dataset's schema (class names, top values) on every page."""
    for col in frame.columns:
        series = frame[col]
        if series.dtype != object and not isinstance(series.dtype, pd.StringDtype):
            continue
        lengths = series.dropna().astype(str).str.len()
        if len(lengths) and lengths.max() > MAX_CELL_CHARS:
            row = int(lengths.idxmax()) + 2  # +1 for the header, +1 to count from 1
            raise DatasetError(
                f"Column {col!r} of {filename} has a value of {int(lengths.max()):,} characters "
                f"(row {row:,}); the limit is {MAX_CELL_CHARS:,}. Check that every quote is "
                "closed, or shorten that value, and upload again."
            )


def read_table(raw: bytes, filename: str) -> pd.DataFrame:
    """Parse an uploaded table (CSV/TSV/Parquet) or raise DatasetError with one clear sentence."""
    suffix = Path(filename).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DatasetError(
            f"{filename}: unsupported file type {suffix or '(none)'!r}. "
            f"Upload one of: {', '.join(TABLE_SUFFIXES + IMAGE_ZIP_SUFFIXES)} (a ZIP of image "
            "folders, one per class)."
        )
    if not raw:
        raise DatasetError(f"{filename} is empty. Upload a file with a header row and data rows.")
    if suffix in {".parquet", ".pq"}:
        frame = _read_parquet(raw, filename)
    else:
        frame = _read_delimited(raw, filename, suffix)
    frame.columns = [str(c).strip() for c in frame.columns]
    _check_width(frame.shape[1], filename)
    if len(frame) == 0:
        raise DatasetError(f"{filename} has a header but no data rows.")
    _check_cell_lengths(frame, filename)
    return frame


# ---------------------------------------------------------------- typing


def as_numeric(series: pd.Series) -> pd.Series | None:
    """The column as floats if (nearly) all its present values are numbers, else None."""
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    present = series.dropna()
    if present.empty:
        return None
    parsed = _parse_numbers(present.astype(str))
    if parsed.notna().mean() >= NUMERIC_PARSE_SHARE:
        return _parse_numbers(series.astype("string")).astype("float64")
    return None


def _parse_numbers(text: pd.Series) -> pd.Series:
    """Numbers from text: surrounding spaces and thousands separators (1,234.5) allowed."""
    text = text.str.strip()
    grouped = text.str.match(_THOUSANDS, na=False)
    if grouped.any():
        text = text.where(~grouped, text.str.replace(",", "", regex=False))
    return pd.to_numeric(text, errors="coerce")


def _is_integer_valued(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and bool(np.all(np.mod(present.to_numpy(dtype="float64"), 1) == 0))


def column_role(series: pd.Series) -> str:
    """numeric | categorical | text | id | constant — what a tabular model does with it."""
    present = series.dropna()
    n_unique = present.nunique()
    if n_unique <= 1:
        return "constant"
    all_distinct = n_unique == len(present) and len(present) > 20
    if all_distinct and _ID_NAME.search(str(series.name or "")):
        return "id"
    numeric = as_numeric(series)
    if numeric is not None:
        # A few repeated integer codes are categories; a few *distinct* ones (ages in a
        # six-row file) are still measurements.
        if (
            _is_integer_valued(numeric)
            and n_unique <= CATEGORICAL_INT_MAX_UNIQUE
            and n_unique <= 0.5 * len(present)
        ):
            return "categorical"
        return "numeric"
    as_text = present.astype(str)
    unique_share = n_unique / len(present)
    if as_text.str.len().mean() > 30 and unique_share > 0.5:
        return "text"
    if unique_share == 1.0 and len(present) > 20:
        return "id"
    return "categorical"


def infer_task(target: pd.Series) -> str:
    numeric = as_numeric(target)
    if numeric is None:
        return "classification"
    if _is_integer_valued(numeric) and numeric.nunique() <= CLASSIFICATION_INT_MAX_UNIQUE:
        return "classification"
    return "regression"


def class_labels(target: pd.Series) -> pd.Series:
    """Canonical string labels: integer-valued numbers lose their '.0' (1.0 and 1 are one class)."""
    numeric = as_numeric(target)
    if numeric is not None and _is_integer_valued(numeric):
        return numeric.map(lambda v: str(int(v)) if pd.notna(v) else None)
    return target.map(lambda v: str(v).strip() if pd.notna(v) else None)


def _sorted_classes(labels: pd.Series) -> list[str]:
    values = labels.dropna().unique().tolist()
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def profile_columns(frame: pd.DataFrame, target: str) -> list[dict[str, Any]]:
    profile = []
    for name in frame.columns:
        series = frame[name]
        role = "target" if name == target else column_role(series)
        entry: dict[str, Any] = {
            "name": name,
            "role": role,
            "dtype": str(series.dtype),
            "missing_pct": round(float(series.isna().mean() * 100), 2),
            "unique": int(series.nunique()),
        }
        numeric = as_numeric(series)
        if numeric is not None and numeric.notna().any():
            entry.update(
                min=float(numeric.min()),
                max=float(numeric.max()),
                mean=float(numeric.mean()),
                std=float(numeric.std(ddof=0)),
            )
        else:
            top = series.dropna().astype(str).value_counts().head(5)
            entry["top_values"] = [str(v) for v in top.index]
        profile.append(entry)
    return profile


# ---------------------------------------------------------------- storing


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DatasetError("Give the dataset a name.")
    if len(name) > 100:
        raise DatasetError(f"Dataset names are at most 100 characters; this one has {len(name)}.")
    return name


def _resolve_target(frame: pd.DataFrame, target: str | None, filename: str) -> str:
    columns = list(frame.columns)
    if not target:
        return columns[-1]  # the usual convention when the uploader does not say
    if target in columns:
        return target
    folded = {c.lower(): c for c in columns}
    if target.strip().lower() in folded:
        return folded[target.strip().lower()]
    shown = ", ".join(columns[:30]) + (" …" if len(columns) > 30 else "")
    raise DatasetError(f"Target column {target!r} is not in {filename}. Its columns are: {shown}.")


def build_schema(
    frame: pd.DataFrame, target: str, filename: str, text_column: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate the target, drop rows without one, and describe every column.

    A text dataset (text_column given) has that column as its one feature.
    """
    n_before = len(frame)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    dropped = n_before - len(frame)
    if frame.empty:
        raise DatasetError(f"Target column {target!r} is empty in every row of {filename}.")
    task = infer_task(frame[target])
    schema: dict[str, Any] = {
        "target": target,
        "task": task,
        "rows_dropped_missing_target": dropped,
    }
    if task == "classification":
        labels = class_labels(frame[target])
        classes = _sorted_classes(labels)
        if len(classes) < 2:
            raise DatasetError(
                f"Target column {target!r} has only one class ({classes[0]!r}); a classifier needs "
                "at least two. Pick another target column."
            )
        if len(classes) > MAX_CLASSES:
            raise DatasetError(
                f"Target column {target!r} has {len(classes):,} distinct values — too many classes "
                f"(limit {MAX_CLASSES}). If it is a number to predict, it needs more distinct "
                "values."
            )
        counts = labels.value_counts()
        schema["classes"] = classes
        schema["class_counts"] = {c: int(counts.get(c, 0)) for c in classes}
    else:
        # A few non-numbers ("n/a", "unknown") in a numeric target: drop those rows, keep a count.
        values = as_numeric(frame[target])
        keep = values.notna()
        schema["rows_dropped_non_numeric_target"] = int((~keep).sum())
        frame = frame[keep.to_numpy()].reset_index(drop=True)
        frame[target] = values[keep].to_numpy()
        schema["target_stats"] = {
            "min": float(frame[target].min()),
            "max": float(frame[target].max()),
            "mean": float(frame[target].mean()),
            "std": float(frame[target].std(ddof=0)),
        }
    schema["columns"] = profile_columns(frame, target)
    features = [c["name"] for c in schema["columns"] if c["role"] in ("numeric", "categorical")]
    if text_column is not None:
        features = [text_column]
        for col in schema["columns"]:
            col["role"] = "text" if col["name"] == text_column else col["role"]
    if not features:
        raise DatasetError(
            f"{filename} has no usable feature columns besides the target (every other column is "
            "empty, constant, an identifier or free text). If a column holds texts, add it as a "
            "text dataset (kind text)."
        )
    schema["features"] = features
    return frame, schema


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
) -> DatasetRecord:
    """Validate a parsed table and store it atomically; returns the new dataset's record.

    kind auto makes a table whose content is one free-text column a text dataset
    (engine/data/text.py); tabular or text force it.
    """
    from engine.data.text import drop_rows_without_text, resolve_kind, text_summary

    name = _check_name(name)
    if dataset_store.dataset_name_exists(db, name):
        raise DatasetError(f"A dataset named {name!r} already exists. Choose another name.")
    target = _resolve_target(frame, target, filename)
    kind, text_column = resolve_kind(frame, target, kind, text_column, filename)
    dropped_text = 0
    if text_column is not None:
        frame, dropped_text = drop_rows_without_text(frame, text_column, filename)
    frame, schema = build_schema(frame, target, filename, text_column=text_column)
    if text_column is not None:
        schema.update(text_summary(frame, text_column, dropped_text))
    schema["source_filename"] = filename

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
    )


def _ingest_image_zip(
    settings: Settings,
    db: Engine,
    source: bytes | Path,
    filename: str,
    name: str,
    owner: str | None = None,
) -> DatasetRecord:
    from engine.data.images import ingest_image_zip

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
    dataset_writes.delete_dataset(db, record.id)
    shutil.rmtree(settings.resolve(record.path), ignore_errors=True)


# ---------------------------------------------------------------- loading


def _data_file(settings: Settings, record: DatasetRecord) -> Path:
    path = settings.resolve(record.path) / "data.parquet"
    if not path.is_file():
        raise DatasetError(
            f"The files of dataset {record.name!r} are missing ({path}). "
            "Upload the dataset again, or restore SEEDLAB_HOME from a backup."
        )
    return path


def load_frame(
    settings: Settings, record: DatasetRecord, columns: list[str] | None = None
) -> pd.DataFrame:
    """The stored table (or only some of its columns: Parquet reads just those)."""
    return pd.read_parquet(_data_file(settings, record), columns=columns)


def preview(settings: Settings, record: DatasetRecord, rows: int = 20) -> pd.DataFrame:
    """The first rows, read from the first record batch only (not the whole file)."""
    parquet = pq.ParquetFile(_data_file(settings, record))
    batch = next(parquet.iter_batches(batch_size=rows), None)
    if batch is None:
        return parquet.schema_arrow.empty_table().to_pandas()
    return batch.to_pandas()


def profile_table(record: DatasetRecord) -> pd.DataFrame:
    """One row per column: role, dtype, missing %, distinct values, range or top values."""
    rows = []
    for col in record.schema["columns"]:
        if "mean" in col:
            summary = f"{col['min']:.4g} … {col['max']:.4g} (mean {col['mean']:.4g})"
        else:
            summary = ", ".join(col.get("top_values", []))
        rows.append(
            {
                "column": col["name"],
                "role": col["role"],
                "dtype": col["dtype"],
                "missing %": col["missing_pct"],
                "unique": col["unique"],
                "summary": summary,
            }
        )
    return pd.DataFrame(rows)
