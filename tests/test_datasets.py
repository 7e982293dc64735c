"""Dataset ingest: good tables become datasets; bad ones get one sentence and leave nothing."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from db import datasets as dataset_store
from engine.core.errors import DatasetError
from engine.data.columns import column_role, infer_task, profile_table
from engine.data.datasets import ingest_bytes
from engine.data.stored import load_frame, preview
from tests.support.data import dataset_state

MESSY_CSV = (
    "age,city,income,plan,notes,churned\n"
    "34,Paris,50000,basic,called support twice about the invoice format,yes\n"
    ",London,,premium,,no\n"
    "45,Paris,62000,basic,happy customer who renewed early this year,no\n"
    "23,,31000,,asked for a discount and a longer trial period,yes\n"
    "51,Berlin,70500,premium,,no\n"
    "29,London,41000,basic,complained about the mobile app crashing,yes\n"
)


def test_messy_csv_is_typed(settings, db):
    record = ingest_bytes(
        settings, db, MESSY_CSV.encode(), filename="churn.csv", name="churn", target="churned"
    )
    assert record.task == "classification"
    assert record.schema["classes"] == ["no", "yes"]
    roles = {c["name"]: c["role"] for c in record.schema["columns"]}
    assert roles["age"] == "numeric" and roles["income"] == "numeric"
    assert roles["city"] == "categorical" and roles["plan"] == "categorical"
    assert roles["churned"] == "target"
    assert set(record.schema["features"]) >= {"age", "city", "income", "plan"}
    missing = {c["name"]: c["missing_pct"] for c in record.schema["columns"]}
    assert missing["age"] == pytest.approx(100 / 6, abs=0.01)
    frame = load_frame(settings, record)
    assert len(frame) == 6 and frame["age"].isna().sum() == 1
    assert len(preview(settings, record, rows=3)) == 3
    assert set(profile_table(record)["column"]) == set(frame.columns)


def test_tsv_semicolon_and_parquet(settings, db):
    tsv = "x\ty\n" + "".join(f"{i}\t{i * 2.5 + 0.1}\n" for i in range(40))
    rec = ingest_bytes(settings, db, tsv.encode(), filename="a.tsv", name="tsv", target="y")
    assert rec.task == "regression" and rec.n_rows == 40
    semi = "a;b;label\n" + "".join(f"{i};{i % 3};{'ab'[i % 2]}\n" for i in range(30))
    rec = ingest_bytes(settings, db, semi.encode(), filename="b.csv", name="semi", target="label")
    assert rec.schema["features"] == ["a", "b"] and rec.schema["classes"] == ["a", "b"]
    buf = io.BytesIO()
    pd.DataFrame(
        {"f": [1.5, 2.5, 3.5, 4.5], "g": ["u", "v", "u", "v"], "t": [0, 1, 0, 1]}
    ).to_parquet(buf)
    rec = ingest_bytes(settings, db, buf.getvalue(), filename="c.parquet", name="pq", target="t")
    assert rec.task == "classification" and rec.schema["classes"] == ["0", "1"]


def test_no_target_takes_the_column_named_like_one_never_the_last(settings, db):
    with pytest.raises(DatasetError, match=r"no column named like a target .* columns are: a, B"):
        ingest_bytes(
            settings, db, b"a,B\n1,x\n2,y\n3,x\n", filename="d.csv", name="d0", target=None
        )
    assert dataset_store.list_datasets(db) == []
    rec = ingest_bytes(
        settings, db, b"Label,a,B\n1,x,2\n2,y,2\n1,x,3\n", filename="d.csv", name="d1", target=None
    )
    assert rec.target == "Label"
    rec = ingest_bytes(
        settings, db, b"a,B\n1,x\n2,y\n3,x\n", filename="d.csv", name="d2", target="b"
    )
    assert rec.target == "B"


def test_rows_without_target_are_dropped(settings, db):
    rec = ingest_bytes(
        settings, db, b"a,t\n1,x\n2,\n3,y\n4,x\n", filename="d.csv", name="d", target="t"
    )
    assert rec.n_rows == 3 and rec.schema["rows_dropped_missing_target"] == 1


def _nested_parquet() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"a": [[1, 2], [3]], "t": ["x", "y"]}).to_parquet(buf)
    return buf.getvalue()


BAD_INPUTS = [
    (b"", "e.csv", "t", "is empty"),
    (b"   \n\n", "e.csv", "t", "is empty"),
    (b"a,t\n", "h.csv", "t", "no data rows"),
    (b'a,t\n1,"x\n2,y\n', "q.csv", "t", "could not be parsed"),
    (
        b"a,t\n1,x\n2,y\n",
        "u.csv",
        "label",
        "Target column 'label' is not in u.csv. Its columns are: a, t",
    ),
    (b"a,t\n1,x\n2,x\n3,x\n", "o.csv", "t", "only one class"),
    ("a,t\n1,caf\u00e9\n2,th\u00e9\n".encode("latin-1"), "l.csv", "t", "is not valid UTF-8"),
    (b"a,t\n1,x\n", "x.xlsx", "t", "unsupported file type"),
    (b"PAR1 not really parquet", "p.parquet", "t", "not a readable Parquet file"),
    (_nested_parquet(), "n.parquet", "t", "nested values"),
    (b"id,t\n1,x\n1,y\n1,x\n", "c.csv", "t", "no usable feature columns"),
    (b"a,t\n1,\n2,\n", "m.csv", "t", "is empty in every row"),
]


@pytest.mark.parametrize(("raw", "filename", "target", "message"), BAD_INPUTS)
def test_bad_input_gets_a_sentence_and_leaves_nothing(settings, db, raw, filename, target, message):
    before = dataset_state(settings, db)
    with pytest.raises(DatasetError) as info:
        ingest_bytes(settings, db, raw, filename=filename, name="bad", target=target)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert dataset_state(settings, db) == before


def test_duplicate_name_and_size_cap(settings, db):
    ingest_bytes(settings, db, b"a,t\n1,x\n2,y\n", filename="d.csv", name="same", target="t")
    before = dataset_state(settings, db)
    with pytest.raises(DatasetError, match="already exists"):
        ingest_bytes(settings, db, b"a,t\n1,x\n2,y\n", filename="d.csv", name="same", target="t")
    big = b"a,t\n" + b"1,x\n" * (6 * 1024 * 1024 // 4)  # the fixture caps uploads at 5 MB
    with pytest.raises(DatasetError, match="upload limit is 5 MB"):
        ingest_bytes(settings, db, big, filename="big.csv", name="big", target="t")
    with pytest.raises(DatasetError, match="Give the dataset a name"):
        ingest_bytes(settings, db, b"a,t\n1,x\n2,y\n", filename="d.csv", name="  ", target="t")
    assert dataset_state(settings, db) == before


def test_column_roles_and_task_inference():
    assert column_role(pd.Series([1.5, 2.25, 3.0, None])) == "numeric"
    assert column_role(pd.Series([1, 2, 3, 1, 2, 3, 1])) == "categorical"  # low-cardinality ints
    assert column_role(pd.Series(["a", "b", "a"])) == "categorical"
    assert column_role(pd.Series(["7", "8.5", "n/a"] + [str(i) for i in range(60)])) == "numeric"
    assert column_role(pd.Series([f"user-{i}" for i in range(50)])) == "id"
    assert column_role(pd.Series(["same"] * 5)) == "constant"
    long_text = [f"this is a long free text sentence number {i} about things" for i in range(30)]
    assert column_role(pd.Series(long_text)) == "text"
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert infer_task(pd.Series([float(i) / 7 for i in range(100)])) == "regression"


def test_demo_datasets_register_once(settings, db, demo_datasets):
    from engine.data.demo import register_demo_datasets

    assert demo_datasets == ["iris", "wine", "breast_cancer", "diabetes", "support_tickets"]
    assert register_demo_datasets(settings, db) == ["digits"]  # the fixture leaves images out
    assert register_demo_datasets(settings, db) == []
    diabetes = dataset_store.get_dataset_by_name(db, "diabetes")
    assert diabetes.task == "regression" and diabetes.n_rows == 442
    iris = dataset_store.get_dataset_by_name(db, "iris")
    assert iris.schema["classes"] == ["setosa", "versicolor", "virginica"]


def test_real_world_messiness(settings, db):
    rows = ["Unnamed: 0,customer_id,signup,revenue,score,price"]
    for i in range(60):
        revenue = f'"{1000 + i * 1234:,}"'  # quoted thousands separators
        price = "unknown" if i == 5 else f"{10 + i * 0.75:.2f}"  # one non-number in the target
        rows.append(
            f"{i},CU-{i:04d},2024-01-{1 + i % 28:02d},{revenue},{(i * 7) % 13 + 0.5},{price}"
        )
    rec = ingest_bytes(
        settings,
        db,
        ("\n".join(rows) + "\n").encode(),
        filename="m.csv",
        name="messy",
        target="price",
    )
    roles = {c["name"]: c["role"] for c in rec.schema["columns"]}
    assert roles["Unnamed: 0"] == "id" and roles["customer_id"] == "id"
    assert roles["revenue"] == "numeric" and roles["score"] == "numeric"
    assert rec.task == "regression" and rec.n_rows == 59
    assert rec.schema["rows_dropped_non_numeric_target"] == 1
    assert load_frame(settings, rec)["price"].dtype == "float64"


def test_semicolon_files_with_decimal_commas(settings, db):
    rows = ["length;width;kind"] + [f"{i},5;{i % 4},25;{'ab'[i % 2]}" for i in range(30)]
    rec = ingest_bytes(
        settings, db, ("\n".join(rows) + "\n").encode(), filename="eu.csv", name="eu", target="kind"
    )
    roles = {c["name"]: c["role"] for c in rec.schema["columns"]}
    assert roles["length"] == "numeric"
    assert load_frame(settings, rec)["length"].iloc[1] == 1.5


def test_a_moved_home_keeps_its_datasets(settings, db, tmp_path):
    import shutil

    from engine.core.settings import Settings

    rec = ingest_bytes(
        settings, db, MESSY_CSV.encode(), filename="c.csv", name="c", target="churned"
    )
    assert not rec.path.startswith("/")  # stored relative to SEEDLAB_HOME
    moved = tmp_path / "moved-home"
    shutil.copytree(settings.home, moved)
    shutil.rmtree(settings.datasets_dir)
    moved_settings = Settings(home=moved, db_url=f"sqlite:///{moved / 'seedlab.db'}")
    assert len(load_frame(moved_settings, rec)) == 6
