"""What the forms offer: tasks, model families, and which metrics matter for each task."""

from __future__ import annotations

TASKS = {
    "classification": "predict a category (the target's classes)",
    "regression": "predict a number",
}

MODEL_FAMILIES = {
    "mlp": "Multi-layer perceptron for tables: standardized numbers + one-hot categories",
}

# Per-epoch curves, in the order the Run page shows them.
EPOCH_METRICS = {
    "classification": ["train_loss", "val_loss", "val_accuracy"],
    "regression": ["train_loss", "val_loss", "val_rmse"],
}

# Final held-out metrics, written once at the end of a completed run.
TEST_METRICS = {
    "classification": [
        "test_accuracy",
        "test_f1_macro",
        "test_precision_macro",
        "test_recall_macro",
        "test_roc_auc",
        "test_log_loss",
    ],
    "regression": ["test_rmse", "test_mae", "test_r2"],
}

# The one metric a run is judged by, and whether higher is better.
HEADLINE_METRIC = {
    "classification": ("test_accuracy", True),
    "regression": ("test_rmse", False),
}

# Metrics shown as columns in the runs table.
TABLE_METRICS = ["test_accuracy", "test_f1_macro", "test_rmse", "test_r2", "val_loss"]

METRIC_LABELS = {
    "train_loss": "train loss",
    "val_loss": "val loss",
    "val_accuracy": "val accuracy",
    "val_rmse": "val RMSE",
    "test_accuracy": "test accuracy",
    "test_f1_macro": "test F1 (macro)",
    "test_precision_macro": "test precision (macro)",
    "test_recall_macro": "test recall (macro)",
    "test_roc_auc": "test ROC AUC",
    "test_log_loss": "test log loss",
    "test_rmse": "test RMSE",
    "test_mae": "test MAE",
    "test_r2": "test R²",
    "lr": "learning rate",
    "best_epoch": "best epoch (weights kept)",
}


def effective_task(config_task: str, dataset_task: str) -> str:
    """The task a run trains: its config's task, or the dataset's when the config says auto."""
    return dataset_task if config_task == "auto" else config_task


def metric_label(key: str) -> str:
    return METRIC_LABELS.get(key, key.replace("_", " "))
