"""Reading an uploaded table: CSV/TSV (sniffed separator, BOM encodings) or Parquet, with the
limits that keep a hostile file from costing minutes or gigabytes. Pure: no database."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.core.errors import DatasetError
from engine.data import parquet_types
from engine.data.file_kind import check_table_upload

TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".parquet", ".pq")
IMAGE_ZIP_SUFFIXES = (".zip",)  # a folder per class of images: engine/data/images.py
MAX_COLUMNS = 5000
# Room for a long review or article; more is an unclosed quote or a pasted blob.
MAX_CELL_CHARS = 100_000

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
    converts = parquet_types.conversions(schema, filename)
    try:
        table = parquet.read()
    except Exception as exc:
        raise DatasetError(
            f"{filename} is not a readable Parquet file ({type(exc).__name__}). "
            "Export it again, or upload it as CSV."
        ) from None
    # Each column's type has its rule (engine/data/parquet_types.py); pandas' own metadata in
    # the file is not followed (it would bring back the types just converted, or a stored index).
    frame = parquet_types.plain_table(table, converts).to_pandas(ignore_metadata=True)
    return frame.drop(columns=_pandas_index_columns(schema), errors="ignore")


def _pandas_index_columns(schema: pa.Schema) -> list[str]:
    """The columns a pandas writer added for its index (`__index_level_0__`): not data."""
    try:
        index = (schema.pandas_metadata or {}).get("index_columns", [])
    except ValueError:  # unreadable metadata: no index columns
        return []
    return [name for name in index if isinstance(name, str)]


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
    check_table_upload(raw, filename)  # a ZIP, image or program is named for what it is
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
