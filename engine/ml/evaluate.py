"""Held-out evaluation with scikit-learn → a plain dict report (JSON-ready).

The report carries everything the Run page draws, so the page never needs the model or the
data: metrics, confusion matrix, per-class scores, ROC and PR curves (thinned to a few hundred
points), predicted-vs-actual pairs and the worst mistakes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

# Points kept per curve and per scatter: enough for a smooth line at dashboard width, small
# enough that report.json stays well under a megabyte for any test split.
CURVE_POINTS = 200
SCATTER_POINTS = 1000
WORST_MISTAKES = 20

Describe = Callable[[Sequence[int]], list[dict[str, Any]]]


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy (the mean recall of the classes in `y_true`), without
    its "y_pred contains classes not in y_true" warning.

    That warning fires on every call where the model predicts a class the split lacks, which is
    common with many small classes; permutation importance scores ~100 times a run, so one run
    logged it ~90 times. Macro recall over exactly the classes present in `y_true` is the same
    number (a test checks it) and has nothing to warn about: a prediction of another class is a
    miss of the true class, as in balanced_accuracy_score.
    """
    present = np.unique(y_true)
    return float(skm.recall_score(y_true, y_pred, labels=present, average="macro"))


def _thin(*columns: np.ndarray, limit: int = CURVE_POINTS) -> list[list[float]]:
    """Evenly spaced entries of aligned arrays, keeping the first and the last."""
    n = len(columns[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)) if n else []
    return [[_finite(v) for v in np.asarray(col)[keep]] for col in columns]


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no inf/NaN


def _curves(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """ROC and precision-recall curves: the positive class when binary, one-vs-rest otherwise."""
    targets = [1] if len(classes) == 2 else list(range(len(classes)))
    roc, pr = {}, {}
    for k in targets:
        positives = (y_true == k).astype(int)
        if positives.min() == positives.max():
            continue  # a class absent from (or alone in) the test split has no curve
        fpr, tpr, _ = skm.roc_curve(positives, probs[:, k])
        precision, recall, _ = skm.precision_recall_curve(positives, probs[:, k])
        fpr_t, tpr_t = _thin(fpr, tpr)
        recall_t, precision_t = _thin(recall, precision)
        roc[classes[k]] = {
            "fpr": fpr_t,
            "tpr": tpr_t,
            "auc": float(skm.auc(fpr, tpr)),
        }
        pr[classes[k]] = {
            "recall": recall_t,
            "precision": precision_t,
            "average_precision": float(skm.average_precision_score(positives, probs[:, k])),
        }
    return {"roc_curves": roc, "pr_curves": pr}


def _with_inputs(
    mistakes: list[dict[str, Any]], positions: Sequence[int], describe: Describe | None
) -> list[dict[str, Any]]:
    if describe is None or not mistakes:
        return mistakes
    try:
        inputs = describe(list(positions))
    except Exception as exc:  # a report without inputs beats no report at all
        return [{**m, "input": {"error": f"{type(exc).__name__}: {exc}"}} for m in mistakes]
    return [{**m, "input": _jsonable(i)} for m, i in zip(mistakes, inputs, strict=True)]


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in values.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[str(k)] = v if isinstance(v, str | int | float | bool | type(None)) else str(v)
    return out


def classification_report(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    describe: Describe | None = None,
) -> dict[str, Any]:
    labels = list(range(len(classes)))
    y_pred = probs.argmax(axis=1)
    probs = probs / probs.sum(axis=1, keepdims=True)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )

    def averaged(score: Callable[..., float], average: str) -> float:
        return score(y_true, y_pred, labels=labels, average=average, zero_division=0)

    report_metrics = {
        "test_accuracy": skm.accuracy_score(y_true, y_pred),
        "test_balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "test_f1_macro": averaged(skm.f1_score, "macro"),
        "test_f1_weighted": averaged(skm.f1_score, "weighted"),
        "test_precision_macro": averaged(skm.precision_score, "macro"),
        "test_precision_weighted": averaged(skm.precision_score, "weighted"),
        "test_recall_macro": averaged(skm.recall_score, "macro"),
        "test_recall_weighted": averaged(skm.recall_score, "weighted"),
        "test_log_loss": skm.log_loss(y_true, probs, labels=labels),
    }
    present = np.unique(y_true)
    if len(present) == len(classes) and len(classes) >= 2:
        # ROC AUC is undefined when the test split lacks a class.
        if len(classes) == 2:
            report_metrics["test_roc_auc"] = skm.roc_auc_score(y_true, probs[:, 1])
        else:
            report_metrics["test_roc_auc"] = skm.roc_auc_score(
                y_true, probs, multi_class="ovr", labels=labels
            )

    # Worst mistakes: wrong predictions the model was most sure of.
    confidence = probs[np.arange(len(y_pred)), y_pred]
    wrong = np.flatnonzero(y_pred != y_true)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:WORST_MISTAKES]
    mistakes = [
        {
            "position": int(i),
            "true": classes[int(y_true[i])],
            "predicted": classes[int(y_pred[i])],
            "confidence": float(confidence[i]),
            "true_class_probability": float(probs[i, int(y_true[i])]),
        }
        for i in worst
    ]
    return {
        "task": "classification",
        "classes": classes,
        "metrics": {k: float(v) for k, v in report_metrics.items()},
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        **_curves(y_true, probs, classes),
        "worst_mistakes": _with_inputs(mistakes, [m["position"] for m in mistakes], describe),
        "n_test": int(len(y_true)),
    }


def regression_report(
    y_true: np.ndarray, y_pred: np.ndarray, describe: Describe | None = None
) -> dict[str, Any]:
    residuals = y_true - y_pred
    mse = skm.mean_squared_error(y_true, y_pred)
    shown = _thin(y_true, y_pred, limit=SCATTER_POINTS)
    worst = np.argsort(-np.abs(residuals), kind="stable")[:WORST_MISTAKES]
    mistakes = [
        {
            "position": int(i),
            "true": float(y_true[i]),
            "predicted": float(y_pred[i]),
            "error": float(residuals[i]),
        }
        for i in worst
    ]
    return {
        "task": "regression",
        "metrics": {
            "test_mse": float(mse),
            "test_rmse": float(np.sqrt(mse)),
            "test_mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "test_r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        },
        "residual_quantiles": {
            str(q): float(np.quantile(residuals, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)
        },
        # Up to SCATTER_POINTS (true, predicted) pairs, for predicted-vs-actual and residuals.
        "predictions": {"true": shown[0], "predicted": shown[1]},
        "worst_mistakes": _with_inputs(mistakes, [m["position"] for m in mistakes], describe),
        "n_test": int(len(y_true)),
    }


def prediction_table(
    y_true: np.ndarray, outputs: np.ndarray, classes: list[str] | None, row_ids: Sequence[str]
) -> pd.DataFrame:
    """Every test prediction, one row per test row id: true and predicted label, whether it is
    right and how sure the model was (classification: the predicted class's probability), or
    the error (regression). Small: five columns of the test split, stored as Parquet."""
    if outputs.ndim == 2:  # class probabilities
        names = np.asarray(classes, dtype=object)
        predicted = outputs.argmax(axis=1)
        probs = outputs / outputs.sum(axis=1, keepdims=True)
        return pd.DataFrame(
            {
                "row_id": pd.Series(list(row_ids), dtype=str),
                "true": names[np.asarray(y_true, dtype=np.int64)].astype(str),
                "predicted": names[predicted].astype(str),
                "correct": predicted == np.asarray(y_true),
                "confidence": probs[np.arange(len(predicted)), predicted],
            }
        )
    return pd.DataFrame(
        {
            "row_id": pd.Series(list(row_ids), dtype=str),
            "true": np.asarray(y_true, dtype=np.float64),
            "predicted": np.asarray(outputs, dtype=np.float64),
            "error": np.asarray(y_true, dtype=np.float64) - np.asarray(outputs, dtype=np.float64),
        }
    )
