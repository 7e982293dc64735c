"""Date and time columns become features (year, cyclical month, weekday, day of year, time of
day) instead of identifiers: ingest, a real run, the predictor, the Playground and the bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.core.run_files import checkpoint_path
from engine.data.columns import column_role
from engine.data.datasets import ingest_bytes
from engine.deploy.bundle_predict import encode_table
from engine.ml.predictor import Predictor
from engine.ml.prep.dates import DateSpec
from tests.support.data import completed_run
from tests.support.pages import open_page, texts


def _weekend_table(n: int = 420) -> pd.DataFrame:
    """Whether a day is a weekend: learnable from the date alone, the noise says nothing."""
    days = pd.date_range("2023-01-02", periods=n, freq="D")
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "day": days.strftime("%Y-%m-%d"),
            "noise": rng.normal(size=n).round(3),
            "label": np.where(days.day_of_week >= 5, "weekend", "weekday"),
        }
    )


def _add(settings, db):  # noqa: ANN001, ANN202
    raw = _weekend_table().to_csv(index=False).encode()
    return ingest_bytes(settings, db, raw, filename="days.csv", name="days", target="label")


def test_a_date_column_is_a_feature_not_an_identifier(settings, db):
    record = _add(settings, db)
    roles = {c["name"]: c["role"] for c in record.schema["columns"]}
    assert roles["day"] == "date" and "day" in record.schema["features"]
    # Numbers named like years stay numbers; repeated words stay categories.
    assert column_role(pd.Series([2001, 2002, 2003] * 10, name="year")) == "categorical"
    assert column_role(pd.Series(["a", "b"] * 20)) == "categorical"


def test_the_cyclical_encoding_puts_december_next_to_january():
    spec = DateSpec.fit("d", pd.Series(["2024-01-15", "2024-12-15", "2024-06-15"]))
    encoded = spec.encode(pd.Series(["2024-01-15", "2024-12-15", "2024-06-15"]))
    month = slice(1, 3)  # after the year
    january, december, june = encoded[:, month]
    assert np.linalg.norm(january - december) < np.linalg.norm(january - june)
    assert spec.feature_names[:3] == ["d:year", "d:month_sin", "d:month_cos"]
    assert not spec.has_time  # midnight everywhere: no time-of-day pair


def test_a_run_learns_from_the_date_and_the_predictor_takes_a_date_string(settings, db):
    _add(settings, db)
    run_id = completed_run(
        settings, db, "days", model="mlp", epochs=40, learning_rate=1e-2, batch_size=32
    )
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    assert predictor.input_columns == ["noise", "day"]
    assert any(name.startswith("day:weekday") for name in predictor.feature_names)
    rows = pd.DataFrame(
        {"noise": [0.0] * 4, "day": ["2025-06-07", "2025-06-08", "2025-06-09", "2025-06-11"]}
    )  # a Saturday, a Sunday, a Monday, a Wednesday: days the model never saw
    assert list(predictor.predict(rows)["prediction"]) == [
        "weekend",
        "weekend",
        "weekday",
        "weekday",
    ]
    # The exported bundle's encoder (pandas only) reads the raw date the same way.
    spec = predictor.payload["preprocessor"]
    assert np.allclose(encode_table(rows, spec), predictor.preprocessor.transform(rows))

    at = open_page("views/playground.py", run=str(run_id))
    boxes = {t.label: t for t in at.text_input}
    assert "day" in boxes and pd.Timestamp(boxes["day"].value)  # starts at a real date
    boxes["day"].set_value("2025-06-08").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Prediction"] == "weekend"
    boxes = {t.label: t for t in at.text_input}
    boxes["day"].set_value("someday").run()
    assert "does not read as a date" in texts(at.warning)


@pytest.mark.parametrize(
    ("values", "has_date", "has_time"),
    [
        (["2024-01-01 08:30", "2024-01-02 17:45"], True, True),
        (["08:30", "17:45"], False, True),
        (["2024-01-01T10:00:00+05:30", "2024-01-01T11:00:00+05:30"], True, True),
    ],
)
def test_times_of_day_and_time_zones(values, has_date, has_time):
    spec = DateSpec.fit("t", pd.Series(values))
    assert (spec.has_date, spec.has_time) == (has_date, has_time)
    assert spec.encode(pd.Series(values)).shape == (2, spec.width)


# ---------------------------------------------------------------- free text beside other features


def _tickets(n: int = 360) -> pd.DataFrame:
    """Whether a note is a complaint: only its words say so; the other columns are noise."""
    rng = np.random.default_rng(1)
    good = ["great service thanks a lot", "very happy with the quick answer", "works fine now"]
    bad = ["refund my money this is broken", "terrible delay still broken", "angry refund now"]
    label = rng.integers(0, 2, size=n)
    notes = [
        f"{(bad if y else good)[i % 3]} ticket {i} from customer number {1000 + i}"
        for i, y in enumerate(label)
    ]
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=n),
            "plan": rng.choice(["basic", "pro", "team"], size=n),
            "note": notes,
            "label": np.where(label == 1, "complaint", "fine"),
        }
    )


def test_a_free_text_column_beside_other_features_is_read_as_words(settings, db):
    raw = _tickets().to_csv(index=False).encode()
    record = ingest_bytes(settings, db, raw, filename="notes.csv", name="notes", target="label")
    assert record.kind == "tabular" and "note" in record.schema["features"]
    run_id = completed_run(settings, db, "notes", model="mlp", epochs=15)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    assert predictor.input_columns[-1] == "note"
    assert "note:word=refund" in predictor.feature_names
    rows = pd.DataFrame(
        {
            "age": [40, 40],
            "plan": ["pro", "pro"],
            "note": ["my order is broken, refund please", "thanks, very happy with it"],
        }
    )
    assert list(predictor.predict(rows)["prediction"]) == ["complaint", "fine"]
    spec = predictor.payload["preprocessor"]
    assert np.allclose(encode_table(rows, spec), predictor.preprocessor.transform(rows))
    at = open_page("views/playground.py", run=str(run_id))
    [box] = [t for t in at.text_area if t.label == "note"]
    box.set_value("terrible, still broken: refund").run()
    assert {m.label: m.value for m in at.metric}["Prediction"] == "complaint"
