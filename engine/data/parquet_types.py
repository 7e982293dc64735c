"""What each Parquet (Arrow) column type becomes when a table is uploaded: every type is either
read as plain data that column typing (engine/data/columns.py) understands — numbers, text,
booleans — or refused with one sentence naming the column. Pure: no database.

Dates, times and timestamps become ISO text, as the same column read from a CSV would be;
durations become seconds; decimals become floats; dictionary (categorical) columns their
values; byte strings text when every value is UTF-8, else they are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from engine.core.errors import DatasetError

Convert = Callable[[pa.ChunkedArray], pa.ChunkedArray]

# Seconds in one tick of each Arrow time unit.
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _same(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column


def _to(target: pa.DataType) -> Convert:
    # safe=False: a decimal with more digits than a float holds is rounded, as a CSV would be.
    return lambda column: column.cast(target, safe=False)


def _iso_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dates, times and timestamps as ISO text; a fraction of zeros (".000000") is left out."""
    text = column.cast(pa.string())
    return pc.replace_substring_regex(text, pattern=r"\.0+([+-]|Z|$)", replacement=r"\1")


def _seconds(unit: str) -> Convert:
    scale = _UNIT_SECONDS[unit]
    return lambda column: pc.multiply(column.cast(pa.int64()).cast(pa.float64()), scale)


def _uuid_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    storage = pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
    return pa.chunked_array(
        [pa.array([None if b is None else str(uuid.UUID(bytes=b)) for b in storage.to_pylist()])],
        pa.string(),
    )


def _text_if_utf8(name: str, filename: str) -> Convert:
    def convert(column: pa.ChunkedArray) -> pa.ChunkedArray:
        try:
            return column.cast(pa.string())  # Arrow checks that every value is valid UTF-8
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DatasetError(
                f"Column {name!r} in {filename} holds raw bytes (Parquet binary), not numbers or "
                "text. Convert it to text (for example hex or base64) or leave it out, and upload "
                "again."
            ) from None

    return convert


def _then(first: Convert, second: Convert) -> Convert:
    return lambda column: second(first(column))


def _decode_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type)


def _extension_storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)


def conversion(kind: pa.DataType, name: str, filename: str) -> Convert:
    """How a column of Arrow type `kind` becomes plain data, decided from the schema alone (before
    any row is read), or a DatasetError saying why the column cannot be used."""
    t = pa.types
    if t.is_dictionary(kind):  # categorical: its values, then their own type's rule
        return _then(_decode_dictionary, conversion(kind.value_type, name, filename))
    if isinstance(kind, pa.BaseExtensionType):
        if kind.extension_name == "arrow.uuid":
            return _uuid_text
        # JSON, or another tool's extension: what it stores (text, bytes, numbers) decides.
        return _then(_extension_storage, conversion(kind.storage_type, name, filename))
    if t.is_boolean(kind) or t.is_integer(kind) or t.is_float32(kind) or t.is_float64(kind):
        return _same
    if t.is_null(kind):  # every value missing: a constant column, left out as a feature
        return _same
    if t.is_float16(kind):  # pandas cannot compute with float16
        return _to(pa.float32())
    if t.is_decimal(kind):
        return _to(pa.float64())
    if t.is_string(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        return _to(pa.string())
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return _text_if_utf8(name, filename)
    if t.is_binary_view(kind):
        return _text_if_utf8(name, filename)
    if t.is_date(kind) or t.is_time(kind) or t.is_timestamp(kind):
        return _iso_text
    if t.is_duration(kind):
        return _seconds(kind.unit)
    if t.is_nested(kind) or t.is_list_view(kind) or t.is_large_list_view(kind):
        raise DatasetError(
            f"Column {name!r} in {filename} holds nested values ({kind}: lists, structs or maps). "
            "Flatten it into plain columns and upload again."
        )
    raise DatasetError(
        f"Column {name!r} in {filename} has the type {kind}, which Seedlab does not read. Convert "
        "it to numbers or text and upload again."
    )


def conversions(schema: pa.Schema, filename: str) -> list[Convert]:
    """One conversion per column of `schema`; refuses the first column that cannot be read."""
    return [conversion(f.type, f.name, filename) for f in schema]


def plain_table(table: pa.Table, converts: list[Convert]) -> pa.Table:
    """The table with each column converted by its conversion (from `conversions`)."""
    columns = [convert(table.column(i)) for i, convert in enumerate(converts)]
    return pa.table(columns, names=table.column_names)
