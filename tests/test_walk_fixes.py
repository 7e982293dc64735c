"""What the newcomer walk found (issue 18, "Fix what the newcomer walk found"), one test each:
the Engine page's CPU share, the Runs list's default columns, the Run page's metric cards, a
scikit-learn warning repeated in a run's log, the Models page's descriptions, and the sweeps'
trial counts, parameters, importances and chart titles."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from engine.data.datasets import ingest_bytes
from engine.ml.evaluate import balanced_accuracy
from tests.support.data import completed_run

# ---------------------------------------------------------------- one scikit-learn warning, 92×


def test_balanced_accuracy_is_sklearns_without_the_warning() -> None:
    """The model predicts classes the split lacks (2 and 3): scikit-learn warns on every call;
    the same number comes back here with nothing to warn about."""
    y_true = np.array([0, 0, 1, 1, 1, 4])
    y_pred = np.array([0, 2, 1, 3, 1, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.balanced_accuracy_score(y_true, y_pred)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = balanced_accuracy(y_true, y_pred)
    assert got == pytest.approx(expected) and got == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert caught == []


def _id_like_table(rows: int = 160, classes: int = 120) -> bytes:
    """cars.csv's shape: the target is (nearly) one class per row, so a test split lacks most
    classes and the model predicts some that are absent."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "mpg": rng.normal(20, 5, rows),
            "weight": rng.normal(3000, 500, rows),
            "origin": rng.choice(["US", "EU", "JP"], rows),
            "Name": [f"car {i % classes}" for i in range(rows)],
        }
    )
    return frame.to_csv(index=False).encode()


def test_a_run_with_many_small_classes_warns_nothing_from_scikit_learn(settings, db) -> None:
    """The walk's run log held "y_pred contains classes not in y_true" 92 times: once per
    scoring pass of permutation importance, which monitors balanced accuracy here."""
    ingest_bytes(settings, db, _id_like_table(), filename="cars.csv", name="cars", target="Name")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        completed_run(settings, db, "cars", monitor="val_balanced_accuracy")
    from_sklearn = [str(w.message) for w in caught if "sklearn" in w.filename]
    assert from_sklearn == []
