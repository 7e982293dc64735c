"""Every column type a Parquet or CSV upload can carry is either read as data or refused with one
sentence, through the real ingest path, the CLI and the Datasets page: nothing stored on a
refusal, never a traceback (engine/data/parquet_types.py decides per Arrow type)."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from db import datasets as dataset_store
from engine.core.errors import DatasetError
from engine.data.datasets import ingest_bytes
from engine.data.stored import load_frame
from tests.support.commands import seedlab_in_process
from tests.support.data import completed_run, dataset_state
from tests.support.pages import open_page

N = 24  # rows; values repeat (i % 3) so that no column looks like a row identifier
LABELS = ["a", "b"] * (N // 2)


def _values(make: Callable[[int], object]) -> list[object]:
    return [make(i % 3) for i in range(N)]


# (type, the column's values) → what the stored column must hold (its first three values)
READ: dict[str, tuple[pa.Array, list[object]]] = {
    "bool": (pa.array(_values(lambda i: i == 1)), [False, True, False]),
    "int8": (pa.array(_values(int), pa.int8()), [0, 1, 2]),
    "uint64": (pa.array(_values(lambda i: 2**64 - 1 - i), pa.uint64()), None),
    "float16": (pa.array(np.array(_values(lambda i: i + 0.5), np.float16)), [0.5, 1.5, 2.5]),
    "float32": (pa.array(_values(lambda i: i + 0.5), pa.float32()), [0.5, 1.5, 2.5]),
    # Stored as it is; typing counts the infinity as missing (test_every_csv_column_type_is_read).
    "float64 with inf": (pa.array(_values(lambda i: float("inf") if i == 2 else i)), None),
    "decimal128": (
        pa.array(_values(lambda i: decimal.Decimal(f"{i}.25")), pa.decimal128(6, 2)),
        [0.25, 1.25, 2.25],
    ),
    "decimal256": (
        pa.array(_values(lambda i: decimal.Decimal(f"1{i}.5")), pa.decimal256(50, 1)),
        [10.5, 11.5, 12.5],
    ),
    "string": (pa.array(_values(lambda i: f"s{i}")), ["s0", "s1", "s2"]),
    "large_string": (pa.array(_values(lambda i: f"s{i}"), pa.large_string()), ["s0", "s1", "s2"]),
    "string_view": (pa.array(_values(lambda i: f"s{i}"), pa.string_view()), ["s0", "s1", "s2"]),
    "binary holding UTF-8": (pa.array(_values(lambda i: f"é{i}".encode())), ["é0", "é1", "é2"]),
    "large_binary holding UTF-8": (
        pa.array(_values(lambda i: f"b{i}".encode()), pa.large_binary()),
        ["b0", "b1", "b2"],
    ),
    "fixed_size_binary holding UTF-8": (
        pa.array(_values(lambda i: f"F{i}".encode()), pa.binary(2)),
        ["F0", "F1", "F2"],
    ),
    "dictionary (categorical)": (
        pa.array(_values(lambda i: "xyz"[i])).dictionary_encode(),
        ["x", "y", "z"],
    ),
    "dictionary of integers": (
        pa.array(_values(lambda i: 10 * i)).dictionary_encode(),
        [0, 10, 20],
    ),
    "null": (pa.nulls(N), [None, None, None]),
    "date32": (
        pa.array(_values(lambda i: dt.date(2024, 1, 1 + i)), pa.date32()),
        ["2024-01-01", "2024-01-02", "2024-01-03"],
    ),
    "date64": (
        pa.array(_values(lambda i: dt.date(2024, 2, 1 + i)), pa.date64()),
        ["2024-02-01", "2024-02-02", "2024-02-03"],
    ),
    "time32": (
        pa.array(_values(lambda i: dt.time(i, 30)), pa.time32("s")),
        ["00:30:00", "01:30:00", "02:30:00"],
    ),
    "time64": (
        pa.array(_values(lambda i: dt.time(i, 0, 0, 250)), pa.time64("us")),
        ["00:00:00.000250", "01:00:00.000250", "02:00:00.000250"],
    ),
    "timestamp": (
        pa.array(_values(lambda i: dt.datetime(2024, 1, 1, i)), pa.timestamp("ns")),
        ["2024-01-01 00:00:00", "2024-01-01 01:00:00", "2024-01-01 02:00:00"],
    ),
    "timestamp with a time zone": (
        pa.array(
            _values(lambda i: dt.datetime(2024, 1, 1, i, tzinfo=dt.UTC)),
            pa.timestamp("us", tz="Asia/Kolkata"),
        ),
        ["2024-01-01 05:30:00+0530", "2024-01-01 06:30:00+0530", "2024-01-01 07:30:00+0530"],
    ),
    "duration": (
        pa.array(_values(lambda i: dt.timedelta(milliseconds=1500 * i)), pa.duration("ms")),
        [0.0, 1.5, 3.0],
    ),
    "uuid": (
        pa.array(_values(lambda i: uuid.UUID(int=i).bytes), pa.uuid()),
        [str(uuid.UUID(int=i)) for i in range(3)],
    ),
    "json": (
        pa.array(_values(lambda i: f'{{"k": {i}}}'), pa.json_()),
        ['{"k": 0}', '{"k": 1}', '{"k": 2}'],
    ),
}

REFUSED: dict[str, tuple[pa.Array, str]] = {
    "binary (raw bytes)": (pa.array(_values(lambda i: bytes([0xFF, i]))), "holds raw bytes"),
    "large_binary (raw bytes)": (
        pa.array(_values(lambda i: bytes([0x80, i])), pa.large_binary()),
        "holds raw bytes",
    ),
    "fixed_size_binary (raw bytes)": (
        pa.array(_values(lambda i: bytes([0xC3, i])), pa.binary(2)),
        "holds raw bytes",
    ),
    "list": (pa.array(_values(lambda i: [i])), "nested values"),
    "large_list": (pa.array(_values(lambda i: [i]), pa.large_list(pa.int64())), "nested values"),
    "fixed_size_list": (pa.array(_values(lambda i: [i, i]), pa.list_(pa.int64(), 2)), "nested"),
    "list_view": (pa.array(_values(lambda i: [i]), pa.list_view(pa.int64())), "nested values"),
    "struct": (pa.array(_values(lambda i: {"a": i})), "nested values"),
    "map": (pa.array(_values(lambda i: [("k", i)]), pa.map_(pa.string(), pa.int64())), "nested"),
    "dictionary of raw bytes": (
        pa.array(_values(lambda i: bytes([0xFE, i]))).dictionary_encode(),
        "holds raw bytes",
    ),
}


def parquet_bytes(column: pa.Array) -> bytes:
    """A file with the column under test, a plain numeric feature and a label."""
    table = pa.table({"f": column, "g": [float(i) for i in range(N)], "label": LABELS})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", list(READ))
def test_each_readable_parquet_type_is_stored_as_plain_data(settings, db, kind):
    column, first = READ[kind]
    record = ingest_bytes(
        settings, db, parquet_bytes(column), filename="t.parquet", name="t", target="label"
    )
    stored = load_frame(settings, record)["f"]
    # What is stored is a number, text or boolean column: nothing downstream meets Arrow types.
    assert stored.dtype.kind in "biuf" or str(stored.dtype) in ("string", "str"), stored.dtype
    if first is not None:
        got = [None if v is None or v is pd.NA else v for v in stored.head(3).tolist()]
        assert got == (pytest.approx(first) if stored.dtype.kind == "f" else first)
    [profile] = [c for c in record.schema["columns"] if c["name"] == "f"]
    assert profile["role"] in ("numeric", "categorical", "constant", "date")


@pytest.mark.parametrize("kind", list(REFUSED))
def test_each_unreadable_parquet_type_is_refused_with_a_sentence(settings, db, kind):
    column, phrase = REFUSED[kind]
    before = dataset_state(settings, db)
    with pytest.raises(DatasetError) as caught:
        ingest_bytes(
            settings, db, parquet_bytes(column), filename="t.parquet", name="t", target="label"
        )
    message = str(caught.value)
    assert phrase in message and "Column 'f' in t.parquet" in message, message
    assert "upload again" in message and "\n" not in message
    assert dataset_state(settings, db) == before


@pytest.mark.parametrize("kind", [*READ, *REFUSED])
def test_the_cli_reads_or_refuses_in_one_line(settings, db, tmp_path, kind):
    column = (READ.get(kind) or REFUSED[kind])[0]
    path = tmp_path / "typed.parquet"
    path.write_bytes(parquet_bytes(column))
    result = seedlab_in_process("datasets", "add", str(path), "--target", "label")
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if kind in REFUSED:
        assert result.returncode == 1
        assert result.stderr.startswith("error: Column 'f' in typed.parquet"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert dataset_store.list_datasets(db) == []
    else:
        assert result.returncode == 0, result.stderr
        assert [d.name for d in dataset_store.list_datasets(db)] == ["typed"]


def _upload(at, filename: str, raw: bytes):  # noqa: ANN001, ANN202 - AppTest
    at.file_uploader[0].set_value((filename, raw, "application/octet-stream")).run()
    return at


@pytest.mark.parametrize("kind", list(REFUSED))
def test_the_page_refuses_with_the_sentence(settings, db, kind):
    column, phrase = REFUSED[kind]
    before = dataset_state(settings, db)
    at = _upload(open_page("views/datasets.py"), "blob.parquet", parquet_bytes(column))
    errors = [str(e.value) for e in at.error]
    assert errors and phrase in errors[0], errors
    assert not any("bug in Seedlab" in e for e in errors)
    assert not at.exception
    assert not [b for b in at.button if b.label == "Add dataset"]  # nothing offered to store
    assert dataset_state(settings, db) == before


def _all_readable_types() -> bytes:
    columns = {kind.replace(" ", "_"): column for kind, (column, _) in READ.items()}
    table = pa.table({**columns, "label": LABELS})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_every_readable_type_at_once_is_added_on_the_page_and_trains(settings, db):
    at = _upload(open_page("views/datasets.py"), "every_type.parquet", _all_readable_types())
    assert not at.error, [e.value for e in at.error]
    [add] = [b for b in at.button if b.label == "Add dataset"]
    target = [s for s in at.selectbox if (s.key or "").startswith("upload_target_")][0]
    assert target.value == "label"
    add.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [record] = dataset_store.list_datasets(db)
    assert record.n_columns == len(READ) + 1
    # Read as data means a model trains on it: every feature column goes through preprocessing.
    assert len(record.schema["features"]) >= 20, record.schema["features"]
    completed_run(settings, db, record.id, epochs=1)


CSV_TYPES = (
    "whole,decimal,flag,huge,infinite,empty,day,grouped,label\n"
    + "".join(
        f"{i},{i}.5,{'True' if i % 2 else 'False'},{10**25 + i},{'inf' if i == 3 else i},,"
        f'2024-01-0{1 + i % 3},"1,{200 + i}",{LABELS[i]}\n'
        for i in range(N)
    )
).encode()


def test_every_csv_column_type_is_read(settings, db):
    record = ingest_bytes(settings, db, CSV_TYPES, filename="types.csv", name="c", target="label")
    roles = {c["name"]: c["role"] for c in record.schema["columns"]}
    assert roles == {
        "whole": "numeric",
        "decimal": "numeric",
        "flag": "categorical",
        "huge": "numeric",
        "infinite": "numeric",
        "empty": "constant",
        "day": "date",  # a feature: year, month, weekday… (engine/ml/prep/dates.py)
        "grouped": "numeric",
        "label": "target",
    }
    [infinite] = [c for c in record.schema["columns"] if c["name"] == "infinite"]
    assert infinite["max"] == N - 1 and infinite["missing_pct"] > 0  # inf counts as missing


def test_a_pandas_index_in_parquet_is_not_a_column(settings, db, tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": list("abab")}, index=list("pqrs"))
    path = Path(tmp_path) / "indexed.parquet"
    frame.to_parquet(path)
    record = ingest_bytes(
        settings, db, path.read_bytes(), filename="indexed.parquet", name="i", target="label"
    )
    assert [c["name"] for c in record.schema["columns"]] == ["x", "label"]
