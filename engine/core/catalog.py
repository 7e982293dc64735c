"""What the forms offer: tasks, model families, and which metrics matter for each task."""

from __future__ import annotations

from typing import Any

TASKS = {
    "classification": "predict a category (the target's classes)",
    "regression": "predict a number",
}

# family -> (dataset kind it trains on, one-line description for the form)
MODEL_FAMILIES: dict[str, tuple[str, str]] = {
    "mlp": (
        "tabular",
        "Multi-layer perceptron for tables: standardized numbers + one-hot categories",
    ),
    # --- text (engine/ml/models/text.py)
    "textcnn": ("text", "TextCNN: 3/4/5-word convolutions over word embeddings, max-pooled"),
    "embedding_bag": ("text", "Embedding bag: the mean of the word vectors, then a linear layer"),
    "lstm": ("text", "Bidirectional LSTM over the words; its final states classify the text"),
    "gru": ("text", "Bidirectional GRU over the words; lighter than the LSTM"),
    "transformer": (
        "text",
        "Small Transformer encoder: self-attention layers, learned positions, mean pooling",
    ),
    "pretrained": (
        "text",
        "Pretrained transformer encoder (Hugging Face) with a new head: frozen, LoRA or full "
        "fine-tuning",
    ),
    # --- images (engine/ml/models/vision.py)
    "cnn": (
        "image",
        "Convolutional network for images: conv, batch norm, pooling blocks (cnn_depth, cnn_width)",
    ),
    "resnet": (
        "image",
        "Small ResNet for images: residual blocks in stages (cnn_depth stages × resnet_blocks)",
    ),
}

# Families that also train on another kind of data; the dataset's kind picks the branch
# (pretrained: a text encoder for text, a vision backbone for images), with its own description.
OTHER_KINDS: dict[str, dict[str, str]] = {
    "pretrained": {
        "image": "Pretrained vision backbone (Hugging Face: ResNet, ConvNeXt, ViT) with a new "
        "head: frozen or full fine-tuning, at the backbone's input size and normalisation",
    },
}

# Each family as a reader names it (tables, the Runs list).
FAMILY_NAMES = {
    "mlp": "MLP",
    "textcnn": "TextCNN",
    "embedding_bag": "Embedding bag",
    "lstm": "LSTM",
    "gru": "GRU",
    "transformer": "Transformer",
    "pretrained": "Pretrained encoder",
    "cnn": "CNN",
    "resnet": "ResNet",
}

# What `model=auto` trains for each dataset kind: a fair first result, not a tuned one.
DEFAULT_MODEL = {"tabular": "mlp", "image": "cnn", "text": "textcnn"}

DATASET_KINDS = ("tabular", "image", "text")


def models_for_kind(kind: str) -> list[str]:
    native = [name for name, (family_kind, _) in MODEL_FAMILIES.items() if family_kind == kind]
    return native + [name for name, kinds in OTHER_KINDS.items() if kind in kinds]


def family_description(name: str, kind: str) -> str:
    """The one-line description of family `name` on `kind` data (for the form)."""
    return OTHER_KINDS.get(name, {}).get(kind) or MODEL_FAMILIES[name][1]


def model_family_for(config_model: str, dataset_kind: str) -> str:
    """The model family a run trains: the config's, or the kind's default for auto.

    Raises ValueError with a sentence a user can act on when the family does not fit the data.
    """
    if config_model == "auto":
        return DEFAULT_MODEL[dataset_kind]
    if config_model not in MODEL_FAMILIES:
        raise ValueError(
            f"model must be auto or one of {', '.join(MODEL_FAMILIES)}; got {config_model!r}"
        )
    family_kind = MODEL_FAMILIES[config_model][0]
    if family_kind != dataset_kind and dataset_kind not in OTHER_KINDS.get(config_model, {}):
        fitting = ", ".join(models_for_kind(dataset_kind)) or "none yet"
        raise ValueError(
            f"model {config_model!r} trains on {family_kind} data but this dataset is "
            f"{dataset_kind}; use auto or one of: {fitting}"
        )
    return config_model


# Per-epoch curves, in the order the Run page shows them.
EPOCH_METRICS = {
    "classification": ["train_loss", "val_loss", "val_accuracy"],
    "regression": ["train_loss", "val_loss", "val_rmse"],
}

# Final held-out metrics, written once at the end of a completed run.
TEST_METRICS = {
    "classification": [
        "test_accuracy",
        "test_balanced_accuracy",
        "test_f1_macro",
        "test_f1_weighted",
        "test_precision_macro",
        "test_precision_weighted",
        "test_recall_macro",
        "test_recall_weighted",
        "test_roc_auc",
        "test_log_loss",
    ],
    "regression": ["test_rmse", "test_mse", "test_mae", "test_r2"],
}

# The one metric a run is judged by, and whether higher is better.
HEADLINE_METRIC = {
    "classification": ("test_accuracy", True),
    "regression": ("test_rmse", False),
}

# Validation metrics a run can monitor (best epoch, early stopping), per task, and whether
# higher is better.
MONITORS = {
    "classification": ("val_loss", "val_accuracy", "val_f1_macro", "val_balanced_accuracy"),
    "regression": ("val_loss", "val_rmse", "val_mae"),
}
HIGHER_IS_BETTER = {
    "val_loss": False,
    "val_accuracy": True,
    "val_f1_macro": True,
    "val_balanced_accuracy": True,
    "val_rmse": False,
    "val_mae": False,
}


def monitor_error(monitor: str, task: str) -> str | None:
    """Why `monitor` cannot be used for `task`, or None when it can."""
    allowed = MONITORS[task]
    if monitor in allowed:
        return None
    return f"monitor: {monitor} is not measured for {task}; use one of {', '.join(allowed)}"


# Metrics shown as columns in the runs table.
TABLE_METRICS = ["test_accuracy", "test_f1_macro", "test_rmse", "test_r2", "val_loss"]

METRIC_LABELS = {
    "train_loss": "train loss",
    "val_loss": "val loss",
    "val_accuracy": "val accuracy",
    "val_rmse": "val RMSE",
    "test_accuracy": "test accuracy",
    "test_balanced_accuracy": "test balanced accuracy",
    "test_f1_macro": "test F1 (macro)",
    "test_f1_weighted": "test F1 (weighted)",
    "test_precision_macro": "test precision (macro)",
    "test_precision_weighted": "test precision (weighted)",
    "test_recall_macro": "test recall (macro)",
    "test_recall_weighted": "test recall (weighted)",
    "val_f1_macro": "val F1 (macro)",
    "val_balanced_accuracy": "val balanced accuracy",
    "val_mae": "val MAE",
    "test_roc_auc": "test ROC AUC",
    "test_log_loss": "test log loss",
    "test_rmse": "test RMSE",
    "test_mse": "test MSE",
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


def model_summary(config: dict[str, Any], dataset_kind: str | None) -> str:
    """The model a run trains, in a few words: "MLP 128→64", "CNN", "TextCNN".

    The family that trains, not the config's `auto` (which is a CNN on images); the hidden
    sizes only for the MLP, the one family they shape. Without the dataset's kind (a deleted
    dataset), the config's own word.
    """
    chosen = str(config.get("model", "auto"))
    family = chosen
    if dataset_kind is not None:
        try:
            family = model_family_for(chosen, dataset_kind)
        except (KeyError, ValueError):  # a config that no longer fits its data: say what it asked
            family = chosen
    name = FAMILY_NAMES.get(family, family)
    if family == "pretrained":
        from engine.core.pretrained import base_model_label

        if dataset_kind == "image":  # a vision backbone
            name = "Pretrained backbone"
        return f"{name} {base_model_label(str(config.get('base_model', 'minilm')))}"
    if family != "mlp":
        return name
    sizes = config.get("hidden_sizes")
    if sizes is None:
        return name
    return f"{name} {'→'.join(str(s) for s in sizes)}" if sizes else "Linear (no hidden layer)"
