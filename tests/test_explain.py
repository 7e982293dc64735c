"""engine/ml/explain.py: per-prediction attributions on real trained models (tiny, seconds each)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.core.run_files import checkpoint_path
from engine.data.datasets import ingest_bytes
from engine.ml import explain
from engine.ml.image_input import read_image
from engine.ml.predictor import Predictor, PredictorError
from engine.ml.prep.tabular import TabularPreprocessor
from engine.report.playground_charts import token_html
from tests.support.data import completed_run


def _synthetic_table(settings, db, n: int = 400) -> pd.DataFrame:  # noqa: ANN001
    """The label is `signal > 0` and nothing else; `noise_*` and `colour` are random."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "noise_a": rng.normal(size=n),
            "signal": rng.normal(size=n),
            "noise_b": rng.uniform(0, 10, size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    frame["label"] = np.where(frame["signal"] > 0, "high", "low")
    ingest_bytes(
        settings,
        db,
        frame.to_csv(index=False).encode(),
        filename="synthetic.csv",
        name="synthetic",
        target="label",
    )
    return frame


def test_the_only_feature_that_matters_gets_the_largest_attribution(settings, db):
    frame = _synthetic_table(settings, db)
    run_id = completed_run(settings, db, "synthetic", epochs=6, learning_rate=0.02)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    # Rows well away from the boundary, on both sides of it.
    rows = frame[frame["signal"].abs() > 1.0].head(12)
    assert len(rows) >= 10
    for i in range(len(rows)):
        explained = explain.explain_row(predictor, rows.iloc[[i]])
        contributions = explained.contributions
        assert list(contributions.columns) == ["feature", "value", "contribution"]
        assert set(contributions["feature"]) == {"noise_a", "signal", "noise_b", "colour"}
        assert contributions.iloc[0]["feature"] == "signal", contributions
        # Integrated Gradients is complete: the contributions add up to the output's change.
        change = explained.output - explained.reference_output
        assert contributions["contribution"].sum() == pytest.approx(change, abs=0.03)
        assert explained.target == f"p({predictor.predict(rows.iloc[[i]])['prediction'][0]})"


def test_regression_contributions_are_in_target_units(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "diabetes", epochs=5)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    from sklearn.datasets import load_diabetes

    row = load_diabetes(as_frame=True, scaled=False).frame.iloc[[3]]
    explained = explain.explain_row(predictor, row)
    assert explained.target == "prediction"
    assert explained.output == pytest.approx(float(predictor.predict(row)["prediction"][0]))
    total = explained.contributions["contribution"].sum()
    # In disease-progression units (tens), not standardized ones (about 1).
    assert total == pytest.approx(explained.output - explained.reference_output, rel=0.05, abs=1)


def test_old_checkpoints_without_a_training_range_still_load(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    new = predictor.preprocessor.to_dict()
    assert new["numeric"][0]["minimum"] == pytest.approx(4.3, abs=0.3)
    for spec in new["numeric"]:
        for added in ("minimum", "maximum", "integer"):
            del spec[added]
    old = TabularPreprocessor.from_dict(new)
    assert old.numeric[0].minimum is None and old.numeric[0].median > 0


def test_token_saliency_gives_one_score_per_token(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "support_tickets", epochs=2, max_length=8)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    explained = explain.explain_text(predictor, "Where is my PARCEL? qqzx")
    assert explained.tokens == ["where", "is", "my", "parcel", "?", "qqzx"]
    assert len(explained.scores) == len(explained.tokens) == len(explained.unknown)
    assert all(np.isfinite(explained.scores)) and any(s != 0 for s in explained.scores)
    assert explained.unknown[-1] and not explained.unknown[0]
    assert sum(explained.scores) == pytest.approx(
        explained.output - explained.reference_output, abs=0.03
    )
    long = explain.explain_text(predictor, " ".join(["refund"] * 11))
    assert len(long.scores) == 8 and long.truncated == 3  # the model reads max_length tokens
    with pytest.raises(PredictorError, match="empty"):
        explain.explain_text(predictor, "   ")


@pytest.mark.parametrize("model", ["textcnn", "lstm", "transformer"])
def test_every_text_family_is_explained(settings, db, demo_datasets, model):
    run_id = completed_run(settings, db, "support_tickets", epochs=1, max_length=8, model=model)
    explained = explain.explain_text(Predictor.load(checkpoint_path(settings, run_id)), "hi")
    assert explained.tokens == ["hi"] and len(explained.scores) == 1


def test_image_saliency_and_overlay(settings, db):
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)
    run_id = completed_run(settings, db, "digits", epochs=1, image_size=8)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    digit = Image.new("L", (8, 8), 0)
    digit.paste(255, (3, 1, 5, 7))  # a bar: a "1"
    explained = explain.explain_image(predictor, digit)
    assert explained.saliency.shape == (8, 8)
    assert explained.saliency.min() >= 0 and explained.saliency.max() == pytest.approx(1.0)
    overlay = explain.saliency_overlay(digit, explained.saliency)
    assert overlay.mode == "RGB" and overlay.size == (256, 256)


def test_uploaded_images_fail_with_a_sentence():
    with pytest.raises(PredictorError, match="not an image"):
        read_image(b"GIF89a not really", "x.gif")
    with pytest.raises(PredictorError, match="empty"):
        read_image(b"", "x.png")
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    with pytest.raises(PredictorError, match="truncated"):
        read_image(buffer.getvalue()[:-200], "cut.png")
    sixteen_bit = io.BytesIO()
    Image.new("I;16", (5, 4), 300).save(sixteen_bit, format="PNG")
    assert read_image(sixteen_bit.getvalue()).size == (5, 4)  # converted as in training


def test_token_markup_escapes_what_the_user_typed():
    markup = token_html(["<script>", "ok"], [0.5, -0.2], [True, False])
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert markup.count("<span") == 2


def test_contribution_labels_show_a_value_as_a_person_reads_it():
    """The explanation's value column holds text ("1.5150000000000001"): the bar's label reads
    1.515, while integers and category codes such as "007" are left as written."""
    from engine.report.playground_charts import contribution_bars

    frame = pd.DataFrame(
        {
            "feature": ["petal_width", "zip", "count", "colour"],
            "value": ["1.5150000000000001", "007", "12", "red"],
            "contribution": [0.2, -0.1, 0.05, 0.01],
        }
    )
    labels = list(contribution_bars(frame, "p(versicolor)").data[0].y)
    assert labels == ["petal_width = 1.515", "zip = 007", "count = 12", "colour = red"]
