"""Baselines a finished run is judged against, on the run's own test split.

Two of them, fitted on the run's training rows only and scored with the same metric functions
as the run's test metrics (engine/ml/evaluate.py), so the numbers compare like for like:

- the trivial one: the most frequent training class, or the training mean;
- a quick classical model from scikit-learn: gradient boosting on the run's preprocessed table
  features, TF-IDF + logistic (ridge) regression on the raw texts, logistic regression on
  8×8 downsampled pixels for images.

The classical fit sees a subsample of the training rows and stops adding trees at a time cap, so
the verdict costs seconds on a big table rather than another training run.
No database here: the runner stores what `compute_baselines` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline

from engine.ml.evaluate import classification_report, regression_report
from engine.ml.prepared import PreparedData
from engine.ml.train import Inputs

# Seconds the classical model may spend adding boosting rounds. A table of a million rows fits
# its first rounds on the subsample below in a few seconds; past the cap the model keeps the
# rounds it has, which is still a fair "what a quick classical model gets" figure.
CLASSICAL_TIME_CAP_S = 20.0
# Training rows the classical model sees at most (a random subsample beyond): enough for a
# stable estimate of what a classical model reaches, small enough to fit in seconds.
CLASSICAL_MAX_ROWS = 20_000
# Images are downsampled to this side before the logistic regression (digits are 8×8 anyway).
IMAGE_SIDE = 8
# Boosting rounds added per step between two looks at the clock, and at most in all (sklearn's
# default for HistGradientBoosting is 100 rounds).
BOOSTING_STEP = 10
BOOSTING_MAX_ROUNDS = 100
# Boosting grows one tree per class per round; past this many classes a logistic regression is
# the table's classical baseline instead (200 classes took 7 s of boosting on 140 rows).
BOOSTING_MAX_CLASSES = 30

Model = Any  # a fitted scikit-learn estimator


def compute_baselines(data: PreparedData, seed: int = 0) -> dict[str, Any]:
    """{"trivial": {...}, "classical": {...} or None, "classical_note": str or None}.

    Each baseline carries its `name` (for people), `model` (the estimator), `metrics` (test
    metrics, keyed as the run's) and `seconds`.
    """
    train = data.train_data
    y_train = train.y_train.detach().cpu().numpy()
    out: dict[str, Any] = {"trivial": _trivial(data, y_train), "classical": None}
    fit = _classical_for(data)
    if fit is None:
        out["classical_note"] = _no_classical_reason(data)
        return out
    rows = _subsample(len(y_train), CLASSICAL_MAX_ROWS, seed)
    if data.task == "classification" and len(np.unique(y_train[rows])) < 2:
        out["classical_note"] = (
            "No classical baseline: the training rows hold a single class, so there is "
            "nothing for a classifier to tell apart."
        )
        return out
    started = time.perf_counter()
    name, model_text, predict = fit(data, rows, y_train[rows], seed)
    outputs = predict()
    out["classical"] = {
        "name": name,
        "model": model_text,
        "metrics": _test_metrics(data, outputs),
        "train_rows": int(len(rows)),
        "seconds": round(time.perf_counter() - started, 3),
    }
    out["classical_note"] = None
    return out


# ---------------------------------------------------------------- trivial


def _trivial(data: PreparedData, y_train: np.ndarray) -> dict[str, Any]:
    started = time.perf_counter()
    n_test = len(data.y_test)
    placeholder = np.zeros((n_test, 1))  # Dummy models ignore the inputs
    if data.task == "classification":
        model = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y_train), 1)), y_train)
        outputs = _full_probs(model, placeholder, len(data.target.classes))
        name, model_text = "the most-frequent-class guess", "DummyClassifier(most_frequent)"
    else:
        values = data.target.decode_regression(y_train.astype(np.float64))
        model = DummyRegressor(strategy="mean").fit(np.zeros((len(values), 1)), values)
        outputs = model.predict(placeholder)
        name, model_text = "predicting the training mean", "DummyRegressor(mean)"
    return {
        "name": name,
        "model": model_text,
        "metrics": _test_metrics(data, outputs),
        "seconds": round(time.perf_counter() - started, 3),
    }


# ---------------------------------------------------------------- classical

Fit = Callable[[PreparedData, np.ndarray, np.ndarray, int], tuple[str, str, Callable[[], Any]]]


def _classical_for(data: PreparedData) -> Fit | None:
    kind = data.train_data.spec.kind
    if kind == "tabular" and data.train_data.spec.shape[0] > 0:
        return _fit_table
    if kind == "text" and data.raw_texts is not None:
        return _fit_text
    if kind == "image" and data.task == "classification":
        return _fit_images
    return None


def _no_classical_reason(data: PreparedData) -> str:
    kind = data.train_data.spec.kind
    what = {"image": "images", "text": "these texts", "tabular": "a table without features"}
    return (
        f"No classical baseline for {what.get(kind, kind)}: the run is compared with the "
        "trivial one only."
    )


def _fit_table(
    data: PreparedData, rows: np.ndarray, y: np.ndarray, seed: int
) -> tuple[str, str, Callable[[], Any]]:
    """Gradient boosting on the run's own preprocessed features (scaled, one-hot); logistic
    regression when there are many classes (boosting grows one tree per class per round)."""
    x = _as_numpy(data.train_data.x_train, rows)
    classify = data.task == "classification"
    if classify and len(data.target.classes) > BOOSTING_MAX_CLASSES:
        linear = LogisticRegression(max_iter=500, random_state=seed).fit(x, y)

        def predict_linear() -> Any:  # noqa: ANN401
            x_test = _as_numpy(data.x_test, None)
            return _full_probs(linear, x_test, len(data.target.classes))

        return "logistic regression", "LogisticRegression", predict_linear
    cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    # early_stopping off: the rounds are capped by the clock below, and early stopping would
    # hold out a further share of tiny training sets.
    model = cls(max_iter=BOOSTING_STEP, warm_start=True, early_stopping=False, random_state=seed)
    started = time.perf_counter()
    while True:
        model.fit(x, y)
        if model.max_iter >= BOOSTING_MAX_ROUNDS:
            break
        if time.perf_counter() - started > CLASSICAL_TIME_CAP_S:
            break
        model.max_iter += BOOSTING_STEP  # warm start: the next fit adds rounds to these

    def predict() -> Any:  # noqa: ANN401
        x_test = _as_numpy(data.x_test, None)
        if classify:
            return _full_probs(model, x_test, len(data.target.classes))
        return data.target.decode_regression(model.predict(x_test).astype(np.float64))

    return "gradient boosting", f"{cls.__name__}({model.max_iter} rounds)", predict


def _fit_text(
    data: PreparedData, rows: np.ndarray, y: np.ndarray, seed: int
) -> tuple[str, str, Callable[[], Any]]:
    """Word and word-pair TF-IDF on the raw texts, then a linear model."""
    train_texts, test_texts = data.raw_texts  # type: ignore[misc]
    texts = [train_texts[i] for i in rows]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=100_000)
    if data.task == "classification":
        linear: Model = LogisticRegression(max_iter=1000, random_state=seed)
        name = "TF-IDF + logistic regression"
    else:
        linear = Ridge(alpha=1.0)
        name = "TF-IDF + ridge regression"
    model = make_pipeline(vectorizer, linear).fit(texts, y)

    def predict() -> Any:  # noqa: ANN401
        if data.task == "classification":
            return _full_probs(model, test_texts, len(data.target.classes))
        return data.target.decode_regression(model.predict(test_texts).astype(np.float64))

    return name, f"TfidfVectorizer(1-2 grams) + {type(linear).__name__}", predict


def _fit_images(
    data: PreparedData, rows: np.ndarray, y: np.ndarray, seed: int
) -> tuple[str, str, Callable[[], Any]]:
    """Logistic regression on the images shrunk to IMAGE_SIDE × IMAGE_SIDE pixels."""
    x = _small_pixels(data.train_data.x_train, rows)
    model = LogisticRegression(max_iter=500, random_state=seed).fit(x, y)

    def predict() -> Any:  # noqa: ANN401
        return _full_probs(model, _small_pixels(data.x_test, None), len(data.target.classes))

    name = f"logistic regression on {IMAGE_SIDE}×{IMAGE_SIDE} pixels"
    return name, "LogisticRegression", predict


# ---------------------------------------------------------------- helpers


def _test_metrics(data: PreparedData, outputs: np.ndarray) -> dict[str, float]:
    """The run's own test metrics (evaluate.py) for a baseline's test outputs."""
    if data.task == "classification":
        report = classification_report(data.y_test, outputs, data.target.classes)
    else:
        report = regression_report(data.y_test, np.asarray(outputs, dtype=np.float64))
    return {k: float(v) for k, v in report["metrics"].items()}


def _full_probs(model: Model, x: Any, n_classes: int) -> np.ndarray:  # noqa: ANN401
    """Class probabilities over every class of the run: a model fitted on the training split
    knows only the classes it saw there; the others get a tiny probability (log loss needs
    rows that sum to one and no zeros it can avoid)."""
    seen = model.predict_proba(x)
    probs = np.full((seen.shape[0], n_classes), 1e-9)
    probs[:, np.asarray(model.classes_, dtype=np.int64)] = seen
    return probs / probs.sum(axis=1, keepdims=True)


def _subsample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _batches(x: Inputs, rows: np.ndarray | None) -> Iterator[torch.Tensor]:
    """The rows of a tensor, or batch by batch from a stream (image sets read from disk)."""
    if isinstance(x, torch.Tensor):
        yield x if rows is None else x[torch.as_tensor(rows, device=x.device)]
    elif rows is None:
        yield from x.in_order()
    else:
        yield from x.batches(torch.as_tensor(rows), 256)


def _as_numpy(x: Inputs, rows: np.ndarray | None) -> np.ndarray:
    return torch.cat([b.detach().float().cpu() for b in _batches(x, rows)]).numpy()


def _small_pixels(x: Inputs, rows: np.ndarray | None) -> np.ndarray:
    parts = [
        F.adaptive_avg_pool2d(b.detach().float(), IMAGE_SIDE).flatten(1).cpu()
        for b in _batches(x, rows)
    ]
    return torch.cat(parts).numpy()
