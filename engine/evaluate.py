"""Held-out evaluation with scikit-learn → a plain dict report (JSON-ready)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm


def classification_report(
    y_true: np.ndarray, probs: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    labels = list(range(len(classes)))
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    report_metrics = {
        "test_accuracy": skm.accuracy_score(y_true, y_pred),
        "test_f1_macro": skm.f1_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "test_precision_macro": skm.precision_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "test_recall_macro": skm.recall_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "test_log_loss": skm.log_loss(
            y_true, probs / probs.sum(axis=1, keepdims=True), labels=labels
        ),
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
        "n_test": int(len(y_true)),
    }


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    residuals = y_true - y_pred
    return {
        "task": "regression",
        "metrics": {
            "test_rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "test_mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "test_r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        },
        "residual_quantiles": {
            str(q): float(np.quantile(residuals, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)
        },
        "n_test": int(len(y_true)),
    }
