"""engine/ml/predictor.py: a finished run's model.pt answers raw inputs of each kind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.core.run_files import checkpoint_path, report_path
from engine.ml.predictor import Predictor, PredictorError, predict_frame
from tests.support.data import completed_run


def test_table_model_predicts_raw_rows_like_its_report(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    assert predictor.kind == "tabular" and predictor.classes == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    out = predict_frame(predictor, iris.drop(columns=["target"]).head(20))
    assert list(out.columns[-4:]) == ["prediction", "p(setosa)", "p(versicolor)", "p(virginica)"]
    assert np.allclose(out.filter(like="p(").sum(axis=1), 1.0)
    assert set(out["prediction"]) <= set(predictor.classes)
    # The same numbers the evaluation saw: the test accuracy in the report is reproducible.
    report = json.loads(report_path(settings, run_id).read_text())
    assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0


def test_regression_predicts_in_target_units(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "diabetes", epochs=5)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.head(8)
    values = predictor.predict(frame)["prediction"]
    # Disease progression is in 25..346: a model predicting standardized units would be near 0.
    assert values.between(0, 500).all() and values.std() > 0


def test_missing_feature_is_a_clear_error(settings, db, demo_datasets):
    predictor = Predictor.load(checkpoint_path(settings, completed_run(settings, db, "iris")))
    with pytest.raises(PredictorError, match="no column.*petal length"):
        predictor.predict(pd.DataFrame({"sepal length (cm)": [5.0]}))


def test_not_a_checkpoint_is_refused_without_unpickling(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PredictorError, match="not a valid Seedlab model"):
        Predictor.load(bad)
    with pytest.raises(PredictorError, match="has not completed"):
        Predictor.load(tmp_path / "missing.pt")


def test_text_and_image_models_take_raw_inputs(settings, db):
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)
    text_run = completed_run(settings, db, "support_tickets", epochs=2, max_length=16)
    text = Predictor.load(checkpoint_path(settings, text_run))
    out = text.predict(["Where is my parcel?", "I was charged twice"])
    assert len(out) == 2 and text.kind == "text" and len(text.classes) == 5

    image_run = completed_run(settings, db, "digits", epochs=1, image_size=8)
    images = Predictor.load(checkpoint_path(settings, image_run))
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))  # any mode and size is converted
    out = images.predict([rgba, Image.new("L", (8, 8), 255)])
    assert list(out["prediction"].unique()) and out.shape == (2, 11)
