"""engine/ml/prep/tabular.py on its own: what a fitted preprocessor does with unseen values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from engine.deploy.bundle_predict import encode_table
from engine.ml.prep.tabular import TabularPreprocessor

SCHEMA = {
    "columns": [{"name": "x", "role": "numeric"}, {"name": "color", "role": "categorical"}],
    "features": ["x", "color"],
}


def test_an_unseen_category_without_an_other_bucket_is_all_zeros_and_warns_nothing():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"]})
    pre = TabularPreprocessor.fit(train, SCHEMA, max_categories=10)
    (color,) = pre.categorical
    assert color.categories == ["red", "blue"] and not color.has_other and not color.has_missing
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' FutureWarning would fail the test here
        encoded = pre.transform(pd.DataFrame({"x": [1.0, 2.0], "color": ["green", "blue"]}))
    assert pre.feature_names == ["x", "color=red", "color=blue"]
    assert encoded[:, 1:].tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_a_skewed_column_is_standardised_on_a_log_scale_the_bundle_repeats():
    """Populations, prices, incomes: a few huge values. On a signed log scale the bulk of the
    rows spreads over the standardised range instead of sitting in a sliver near its bottom."""
    rng = np.random.default_rng(0)
    population = rng.lognormal(mean=14, sigma=2, size=500)  # skewness in the tens
    train = pd.DataFrame({"x": population, "color": ["red"] * 500})
    pre = TabularPreprocessor.fit(train, SCHEMA, max_categories=10)
    (x,) = pre.numeric
    assert x.log and x.median == pytest.approx(np.median(population))
    encoded = pre.transform(train)[:, 0]
    assert encoded.mean() == pytest.approx(0, abs=1e-5) and encoded.std() == pytest.approx(1, 1e-4)
    middle = np.percentile(encoded, [10, 90])
    assert middle[1] - middle[0] > 2  # the bulk spans the scale (as-is: ~0.1 of it)
    assert (np.argsort(encoded, kind="stable") == np.argsort(population, kind="stable")).all()
    # The exported bundle's standalone encoder (engine/deploy/bundle_predict.py) agrees, missing
    # values and negative ones included.
    rows = pd.DataFrame({"x": [np.nan, -5.0, 0.0, 1e9], "color": ["red"] * 4})
    spec = pre.to_dict()
    assert np.allclose(encode_table(rows, spec), pre.transform(rows))
    # A column that is not skewed stays as it was: (x - mean) / std.
    plain = TabularPreprocessor.fit(
        pd.DataFrame({"x": rng.normal(size=500), "color": ["red"] * 500}), SCHEMA, 10
    )
    assert not plain.numeric[0].log
    # Checkpoints from before keep their meaning: no "log" key reads as no log.
    old = {**spec, "numeric": [{k: v for k, v in spec["numeric"][0].items() if k != "log"}]}
    assert not TabularPreprocessor.from_dict(old).numeric[0].log
