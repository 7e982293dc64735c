"""Choosing the target (never the last column by default; identifiers, dates and free text
warned about) and uploads named for what their first bytes say they are — through the pure
functions, the real ingest path, the Datasets page (AppTest) and `seedlab datasets add`."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from db import datasets as dataset_store
from engine.core.errors import DatasetError
from engine.data.columns import TARGET_NAMES, propose_target, target_concern
from engine.data.datasets import ingest_bytes
from engine.data.demo import demo_frames
from engine.data.file_kind import check_image_zip, check_table_upload, sniff
from engine.services import audit
from engine.services import runs as run_actions
from engine.services.permissions import cli_actor
from tests.support.commands import seedlab_in_process
from tests.support.data import dataset_state
from tests.support.pages import button, open_page, texts

# ---------------------------------------------------------------- proposing a target


@pytest.mark.parametrize(
    ("columns", "proposed"),
    [
        (["a", "b", "target"], "target"),
        (["Label", "a"], "Label"),  # case is ignored
        (["x1", "CLASS", "x2"], "CLASS"),
        (["x", "y"], "y"),
        (["a", "Outcome"], "Outcome"),
        (["text", "category"], "category"),
        (["a", "sentiment label"], "sentiment label"),  # *_label, spaces as underscores
        (["a", "churn_target"], "churn_target"),
        (["a", "target-class"], "target-class"),  # target_*
        (["category", "label", "target"], "target"),  # the list's order decides, not position
        (["label", "labels"], "label"),
    ],
)
def test_a_column_named_like_a_target_is_proposed(columns, proposed):
    assert propose_target(columns) == proposed


@pytest.mark.parametrize(
    "columns",
    [
        ["bill_length", "flipper", "sex", "year"],  # penguins: the last column is `year`
        ["Name", "mpg", "cylinders"],
        ["species", "petal_length"],  # a domain word: as often a feature as the target
        ["label_id", "x"],  # an identifier, whatever it is called
        ["labelled", "classy", "xy"],  # only whole words count
    ],
)
def test_nothing_is_proposed_without_a_target_name(columns):
    assert propose_target(columns) is None


def test_the_target_names_are_written_down_in_order():
    assert TARGET_NAMES[:4] == ("target", "label", "labels", "class")
    assert len(set(TARGET_NAMES)) == len(TARGET_NAMES)


# ---------------------------------------------------------------- concerns about a chosen target

RNG = np.random.default_rng(0)


def cars() -> pd.DataFrame:
    """The issue's case: a car's name as the target, 311 names in 406 rows."""
    n = 406
    return pd.DataFrame(
        {
            "mpg": RNG.normal(23, 7, n).round(1),
            "cylinders": RNG.choice([4, 6, 8], n),
            "Name": [f"car model {i % 311}" for i in range(n)],
            "origin": RNG.choice(["usa", "europe", "japan"], n),
        }
    )


def mixed(n: int = 120) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "row": range(1, n + 1),
            "Unnamed: 0": range(n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "seen_at": pd.date_range("2024-01-01", periods=n, freq="h"),
            "year": RNG.choice([2007, 2008, 2009], n),
            "review": [f"I bought this item number {i} and it was fine, mostly." for i in range(n)],
            "price": RNG.normal(100, 20, n).round(2),
            "units": RNG.integers(0, 500, n),
            "delivery_time": RNG.normal(3, 1, n).round(1),
            "label": RNG.choice(["yes", "no"], n),
        }
    )


@pytest.mark.parametrize(
    ("column", "code", "why"),
    [
        ("customer_id", "target_identifier", "its name says it is an identifier"),
        ("row", "target_identifier", "it numbers the rows (1, 2, … once each)"),
        ("Unnamed: 0", "target_identifier", "its name says it is an identifier"),
        ("signup", "target_date", "its values read as dates or times ('2024-01-01', …)"),
        ("seen_at", "target_date", "it holds dates"),
        ("year", "target_date", "it holds years (2007–2009)"),
        ("review", "target_free_text", "characters on average"),
    ],
)
def test_a_suspicious_target_is_named_with_why_and_what_instead(column, code, why):
    concern = target_concern(mixed(), column)
    assert concern is not None and concern.code == code
    assert why in concern.message, concern.message
    assert "Pick 'label', which is named like a target" in concern.message


def test_a_car_name_as_target_is_an_identifier():
    concern = target_concern(cars(), "Name")
    assert concern is not None and concern.code == "target_identifier"
    assert "311 different values in 406 rows" in concern.message
    # No column is named like a target: the advice says what a target looks like instead.
    assert "a category with a few repeated values" in concern.message


@pytest.mark.parametrize("column", ["price", "units", "delivery_time", "label"])
def test_ordinary_targets_raise_nothing(column):
    assert target_concern(mixed(), column) is None


def test_a_small_table_of_distinct_values_is_not_called_an_identifier():
    frame = pd.DataFrame({"x": [1, 2, 3, 4, 5], "name": ["a", "b", "c", "d", "e"]})
    assert target_concern(frame, "name") is None


@pytest.mark.parametrize("name", list(demo_frames()))
def test_the_demo_datasets_raise_no_warning(name):
    frame, target = demo_frames()[name]
    assert target_concern(frame, target) is None


def test_the_stored_demo_datasets_carry_no_target_warning(settings, db, demo_datasets):
    assert len(demo_datasets) == 5
    for record in dataset_store.list_datasets(db):
        assert record.schema["target_warnings"] == [], record.name


# ---------------------------------------------------------------- the ingest path


def test_ingest_keeps_a_suspicious_target_with_its_warning_or_refuses_when_strict(settings, db):
    raw = cars().to_csv(index=False).encode()
    with pytest.raises(DatasetError, match="looks like an identifier.*add --force"):
        ingest_bytes(
            settings, db, raw, filename="cars.csv", name="c", target="Name", strict_target=True
        )
    assert dataset_state(settings, db) == ([], [])
    record = ingest_bytes(settings, db, raw, filename="cars.csv", name="c", target="Name")
    assert [w["code"] for w in record.schema["target_warnings"]] == ["target_identifier"]
    fine = ingest_bytes(settings, db, raw, filename="cars.csv", name="c2", target="origin")
    assert fine.schema["target_warnings"] == []


# ---------------------------------------------------------------- what a file really is


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(buffer, format=fmt)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buffer.getvalue()


def _xlsx() -> bytes:
    """The parts every .xlsx has (as Excel writes them), which is what the sniffer reads."""
    return _zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "_rels/.rels": b"<Relationships/>",
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"<worksheet/>",
        }
    )


def _docx() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "word/document.xml": b"<w:document/>",
        }
    )


def _ods() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mimetype", b"application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", b"<office:document-content/>")
    return buffer.getvalue()


def _sqlite(tmp_path: Path) -> bytes:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (a int)")
    raw = path.read_bytes()
    path.unlink()
    return raw


def _parquet() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"a": [1, 2, 3], "label": ["x", "y", "x"]}).to_parquet(buffer)
    return buffer.getvalue()


CSV = b"a,label\n1,x\n2,y\n3,x\n4,y\n"
PE_HEADER = b"MZ\x90\x00" + b"\x00" * 56 + b"\x80\x00\x00\x00"


def _kinds(tmp_path: Path) -> dict[str, tuple[bytes, str, str]]:
    """key → (bytes, what the message calls it, a phrase of what to do instead)."""
    save_as = "Save As → 'CSV UTF-8'"
    images = "one folder per class"
    return {
        "zip": (_zip({"cats/1.png": _png()}), "a ZIP archive", "upload it under a .zip name"),
        "zip_of_a_csv": (_zip({"data/t.csv": CSV}), "a ZIP archive", "upload 'data/t.csv'"),
        "xlsx": (_xlsx(), "an Excel workbook (.xlsx)", save_as),
        "ods": (_ods(), "an OpenDocument spreadsheet (.ods)", save_as),
        "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "old-format Excel", save_as),
        "png": (_png(), "a PNG image", images),
        "jpeg": (_image("JPEG"), "a JPEG image", images),
        "gif": (_image("GIF"), "a GIF image", images),
        "bmp": (_image("BMP"), "a BMP image", images),
        "webp": (_image("WEBP"), "a WebP image", images),
        "tiff": (_image("TIFF"), "a TIFF image", images),
        "pdf": (_image("PDF"), "a PDF document", "Export the data as a CSV table"),
        "elf": (Path("/bin/true").read_bytes()[:4096], "a Linux executable", "header row"),
        "exe": (PE_HEADER + b"PE\x00\x00" + b"\x00" * 200, "a Windows executable", "header row"),
        "macho": (b"\xcf\xfa\xed\xfe" + b"\x07\x00\x00\x01" * 8, "a macOS executable", "CSV"),
        "script": (b"#!/bin/sh\necho hello\n", "a script", "header row"),
        "docx": (_docx(), "a Word document (.docx)", "Export the data as a CSV table"),
        "7z": (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "a 7-Zip archive", "Decompress it"),
        "rar": (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 24, "a RAR archive", "Decompress it"),
        "zstd": (b"\x28\xb5\x2f\xfd" + b"\x00" * 24, "a Zstandard-compressed file", "Decompress"),
        "gzip": (gzip.compress(CSV), "a gzip-compressed file", "Decompress it"),
        "bzip2": (bz2.compress(CSV), "a bzip2-compressed file", "Decompress it"),
        "xz": (lzma.compress(CSV), "an xz-compressed file", "Decompress it"),
        "parquet": (_parquet(), "a Parquet table", "Rename it upload.parquet"),
        "sqlite": (_sqlite(tmp_path), "an SQLite database", "sqlite3 -header -csv"),
        "html": (b"<!DOCTYPE html>\n<html><body>Sign in</body></html>", "a web page", "login"),
        "json": (b'[{"a": 1, "label": "x"}]', "a JSON file", "Export the data as a CSV"),
    }


def test_every_known_kind_is_recognised(tmp_path):
    for key, (raw, what, _) in _kinds(tmp_path).items():
        kind = sniff(raw)
        assert kind is not None, key
        assert what in kind.what, (key, kind)


@pytest.mark.parametrize(
    "raw",
    [
        CSV,
        b"BMI,age,label\n21.5,30,a\n",  # starts like a BMP, is a table
        b"MZ_ratio,label\n1,a\n",  # starts like a Windows program, is a table
        b"\xef\xbb\xbfa;b\n1;2\n",  # UTF-8 with a BOM
        "a,b\n1,x\n".encode("utf-16"),  # Excel's Unicode Text: read as a table later
    ],
)
def test_tables_are_not_mistaken_for_other_kinds(raw):
    assert sniff(raw) is None
    check_table_upload(raw, "t.csv")


def test_each_kind_is_refused_as_a_table_naming_what_it_is(settings, db, tmp_path):
    for key, (raw, what, instead) in _kinds(tmp_path).items():
        with pytest.raises(DatasetError) as caught:
            ingest_bytes(settings, db, raw, filename="upload.csv", name=key, target="label")
        message = str(caught.value)
        assert message.startswith("upload.csv is ") and what in message, (key, message)
        assert instead in message, (key, message)
        assert "UTF-8" not in message or "CSV UTF-8" in message, (key, message)
    assert dataset_state(settings, db) == ([], [])


def test_a_parquet_named_parquet_is_still_read_and_a_csv_named_parquet_is_named(settings, db):
    record = ingest_bytes(settings, db, _parquet(), filename="t.parquet", name="pq", target="label")
    assert record.n_rows == 3
    with pytest.raises(DatasetError, match=r"t2\.parquet is a text file, not Parquet.*t2\.csv"):
        ingest_bytes(settings, db, CSV, filename="t2.parquet", name="p2", target="label")
    with pytest.raises(DatasetError, match=r"book\.xlsx is an Excel workbook \(\.xlsx\)"):
        ingest_bytes(settings, db, _xlsx(), filename="book.xlsx", name="b", target="label")
    assert [d.name for d in dataset_store.list_datasets(db)] == ["pq"]


@pytest.mark.parametrize(
    ("key", "phrase"),
    [
        ("png", "a PNG image, not a ZIP of image folders. An image dataset needs many images"),
        ("xlsx", "an Excel workbook (.xlsx), not a ZIP of image folders. To add it as a table"),
        ("parquet", "a Parquet table, not a ZIP of image folders. To add it as a table, rename"),
        ("elf", "a program (a Linux executable), not a ZIP of image folders"),
        ("csv", "a text file, not a ZIP archive. If it is a table, rename it upload.csv"),
    ],
)
def test_a_file_named_zip_that_is_no_image_zip_is_named(settings, db, tmp_path, key, phrase):
    raw = CSV if key == "csv" else _kinds(tmp_path)[key][0]
    with pytest.raises(DatasetError) as caught:
        ingest_bytes(settings, db, raw, filename="upload.zip", name="z", target=None)
    assert f"upload.zip is {phrase}" in str(caught.value)
    assert dataset_state(settings, db) == ([], [])


def test_a_real_zip_passes_the_image_zip_check(tmp_path):
    path = tmp_path / "pets.zip"
    path.write_bytes(_zip({"cats/1.png": _png()}))
    check_image_zip(path, "pets.zip")  # the CLI's path: read from disk, not from memory
    check_image_zip(path.read_bytes(), "pets.zip")


# ---------------------------------------------------------------- the Datasets page


def _target_box(at):  # noqa: ANN001, ANN202 - AppTest's selectbox
    return next(s for s in at.selectbox if str(s.key).startswith("upload_target_"))


def test_page_makes_the_user_choose_when_no_column_is_named_like_a_target(settings, db):
    at = open_page("views/datasets.py")
    raw = cars().to_csv(index=False).encode()
    at.file_uploader[0].set_value(("cars.csv", raw, "text/csv")).run()
    box = _target_box(at)
    assert box.value is None and box.options == ["mpg", "cylinders", "Name", "origin"]
    assert "No column is named like a target" in texts(at.caption)
    button(at, "Add dataset").click().run()
    assert "Choose the target column" in texts(at.error)
    assert dataset_state(settings, db) == ([], [])
    # A suspicious choice is warned about before anything is stored, with what to pick instead.
    _target_box(at).set_value("Name").run()
    warning = texts(at.warning)
    assert "'Name' looks like an identifier" in warning and "311 different values" in warning
    assert dataset_state(settings, db) == ([], [])
    _target_box(at).set_value("origin").run()
    assert not at.warning
    button(at, "Add dataset").click().run()
    assert not at.error, texts(at.error)
    stored = dataset_store.get_dataset_by_name(db, "cars")
    assert stored.target == "origin" and stored.schema["target_warnings"] == []


def test_page_proposes_the_column_named_like_a_target(settings, db):
    at = open_page("views/datasets.py")
    frame = mixed().drop(columns=["seen_at"])
    at.file_uploader[0].set_value(("m.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    assert _target_box(at).value == "label"
    assert "proposed because it is named like a target" in texts(at.caption)
    assert not at.warning
    _target_box(at).set_value("year").run()
    assert "'year' looks like a date or time" in texts(at.warning)
    assert "Pick 'label'" in texts(at.warning)


@pytest.mark.parametrize(
    ("filename", "key", "phrase"),
    [
        ("data.csv", "png", "data.csv is a PNG image, not a table"),
        ("data.csv", "zip", "data.csv is a ZIP archive, not a table"),
        ("data.csv", "xlsx", "data.csv is an Excel workbook (.xlsx)"),
        ("data.csv", "exe", "data.csv is a program (a Windows executable)"),
        ("photos.zip", "xlsx", "photos.zip is an Excel workbook (.xlsx), not a ZIP of image"),
        ("photos.zip", "png", "photos.zip is a PNG image, not a ZIP of image folders"),
    ],
)
def test_page_names_what_an_upload_really_is(settings, db, tmp_path, filename, key, phrase):
    at = open_page("views/datasets.py")
    raw = _kinds(tmp_path)[key][0]
    at.file_uploader[0].set_value((filename, raw, "application/octet-stream")).run()
    assert phrase in texts(at.error).replace("\\", "")
    assert "Re-save it as UTF-8" not in texts(at.error)
    assert not [b for b in at.button if b.label == "Add dataset"]  # nothing to add
    assert dataset_state(settings, db) == ([], [])


# ---------------------------------------------------------------- seedlab datasets add


def test_cli_refuses_without_a_target_it_can_name(settings, db, tmp_path):
    path = tmp_path / "cars.csv"
    cars().to_csv(path, index=False)
    result = seedlab_in_process("datasets", "add", str(path))
    assert result.returncode == 1
    assert "error: cars.csv has no column named like a target" in result.stderr
    assert "--target; the columns are: mpg, cylinders, Name, origin." in result.stderr
    assert dataset_state(settings, db) == ([], [])


def test_cli_takes_the_column_named_like_a_target_and_says_so(settings, db, tmp_path):
    path = tmp_path / "m.csv"
    mixed().drop(columns=["seen_at"]).to_csv(path, index=False)
    result = seedlab_in_process("datasets", "add", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert "note: target 'label' chosen because it is named like a target" in result.stderr
    assert '"target": "label"' in result.stdout  # stdout stays one JSON document


def test_cli_refuses_a_suspicious_target_unless_forced(settings, db, tmp_path):
    path = tmp_path / "cars.csv"
    cars().to_csv(path, index=False)
    refused = seedlab_in_process("datasets", "add", str(path), "--target", "Name")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: 'Name' looks like an identifier")
    assert "Nothing was stored; add --force" in refused.stderr
    assert dataset_state(settings, db) == ([], [])
    forced = seedlab_in_process("datasets", "add", str(path), "--target", "Name", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.startswith("warning: 'Name' looks like an identifier")
    assert "Added dataset 'cars'" in forced.stdout
    shown = seedlab_in_process("datasets", "show", "cars")
    assert "warning: 'Name' looks like an identifier" in shown.stdout
    plain = seedlab_in_process("datasets", "add", str(path), "--name", "c2", "--target", "origin")
    assert plain.returncode == 0 and plain.stderr == ""


@pytest.mark.parametrize(
    ("filename", "key", "phrase"),
    [
        ("data.csv", "elf", "data.csv is a program (a Linux executable), not a table"),
        ("data.csv", "zip", "data.csv is a ZIP archive, not a table"),
        ("data.csv", "gzip", "data.csv is a gzip-compressed file"),
        ("book.xlsx", "xlsx", "book.xlsx is an Excel workbook (.xlsx)"),
        ("photos.zip", "png", "photos.zip is a PNG image, not a ZIP of image folders"),
    ],
)
def test_cli_names_what_a_file_really_is(settings, db, tmp_path, filename, key, phrase):
    path = tmp_path / filename
    path.write_bytes(_kinds(tmp_path)[key][0])
    result = seedlab_in_process("datasets", "add", str(path), "--target", "label")
    assert result.returncode == 1 and result.stderr.startswith(f"error: {phrase}"), result.stderr
    assert "Traceback" not in result.stderr and "re-save it as UTF-8" not in result.stderr
    assert dataset_state(settings, db) == ([], [])


# ---------------------------------------------------------------- the audit log names datasets


def test_launch_entries_name_the_dataset_and_old_entries_are_read_with_names(
    settings, db, demo_datasets
):
    iris = dataset_store.get_dataset_by_name(db, "iris")
    run_id = run_actions.launch_run(db, cli_actor(), iris.id, {"epochs": 1})
    entry = next(e for e in audit_entries(db) if e.target == f"run {run_id}")
    assert entry.detail == f"dataset iris (id {iris.id})"
    names = {iris.id: "iris"}
    assert audit.name_datasets(f"dataset {iris.id}", names) == f"dataset iris (id {iris.id})"
    assert audit.name_datasets(f"dataset {iris.id}, from run 4", names).startswith("dataset iris")
    assert audit.name_datasets(f"dataset {iris.id} iris", names) == f"dataset {iris.id} iris"
    assert audit.name_datasets("dataset 999", names) == "dataset 999"  # deleted: as written


def audit_entries(db):  # noqa: ANN001, ANN201
    from db import audit as audit_store

    return audit_store.list_entries(db, limit=50)


# ---------------------------------------------------------------- image datasets on the page


def test_image_datasets_list_images_and_classes_and_fill_their_grid_rows(settings, db):
    per_class = 5
    members = {f"{c}/{i}.png": _image_of(c, i) for c in ("red", "blue") for i in range(per_class)}
    images = ingest_bytes(
        settings, db, _zip(members), filename="c.zip", name="colours", target=None
    )
    table = ingest_bytes(settings, db, CSV, filename="t.csv", name="tiny", target="label")
    at = open_page("views/datasets.py", dataset=str(images.id))
    listed = next(d.value for d in at.dataframe if "size" in d.value.columns)
    rows = listed.set_index("name")
    assert rows.loc["colours", "size"] == "10 images" and rows.loc["colours", "classes"] == 2
    assert pd.isna(rows.loc["colours", "target"])  # no "columns 0", no target column
    assert rows.loc["tiny", "size"] == f"{table.n_rows} rows × 2 columns"
    # One picture per class: its thumbnails side by side, so no row ends with an orphan.
    grids = at.get("image")
    # (The data browser below it shows each image on its own, captioned with its row id.)
    strips = [g for g in grids if not g.proto.imgs[0].caption]
    assert len(strips) == 2 and all(len(g.proto.imgs) == 1 for g in strips)


def test_a_class_strip_is_its_thumbnails_in_one_row():
    from dashboard.components.image_preview import THUMB_GAP, THUMB_SIDE, _strip

    thumbs = [np.zeros((THUMB_SIDE, THUMB_SIDE, 3), np.uint8) for _ in range(8)]
    strip = _strip(thumbs)
    assert strip.shape == (THUMB_SIDE, 8 * THUMB_SIDE + 7 * THUMB_GAP, 3)
    assert (strip[:, THUMB_SIDE : THUMB_SIDE + THUMB_GAP] == 255).all()  # a white gap


def _image_of(colour: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8 + seed, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_admin_page_reads_an_old_entry_with_the_dataset_name(
    settings, db, demo_datasets, monkeypatch
):
    from db.writes import audit as audit_writes

    monkeypatch.delenv("SEEDLAB_AUTH", raising=False)  # localhost: the local admin

    iris = dataset_store.get_dataset_by_name(db, "iris")
    audit_writes.record(db, "ana", "launch", "run 1", f"dataset {iris.id}")  # as written before
    at = open_page("views/admin.py")
    log = at.dataframe[-1].value
    assert list(log["detail"]) == [f"dataset iris (id {iris.id})"]
