"""engine/ml/prep/tabular.py on its own: what a fitted preprocessor does with unseen values."""

from __future__ import annotations

import warnings

import pandas as pd

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
