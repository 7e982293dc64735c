"""Which RunConfig fields matter for which data and model: the New run form shows a field only
where it changes something, so a table's form never asks for a ResNet's block count.

Fields not named here apply to every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.catalog import DEFAULT_MODEL, MODEL_FAMILIES

# Read by the data preparation of one dataset kind only.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "tabular": ("max_categories",),
    "image": (
        "image_size",
        "channels",
        "normalize",
        "augment_flip",
        "augment_crop",
        "augment_rotation",
        "augment_color",
        "data_loading",
        "loader_workers",
    ),
    "text": ("max_length", "vocab_size", "min_frequency", "lowercase"),
}

# Read by the model builders (engine/ml/models/) of these families only.
FAMILY_FIELDS: dict[str, tuple[str, ...]] = {
    "hidden_sizes": ("mlp",),
    "activation": ("mlp", "cnn"),
    "dropout": ("mlp", "cnn", "resnet"),
    "cnn_depth": ("cnn", "resnet"),
    "cnn_width": ("cnn", "resnet"),
    "batch_norm": ("cnn", "resnet"),
    "resnet_blocks": ("resnet",),
    "embedding_dim": ("textcnn", "embedding_bag", "lstm", "gru", "transformer"),
    "text_dropout": ("textcnn", "embedding_bag", "lstm", "gru", "transformer", "pretrained"),
    "base_model": ("pretrained",),
    "encoder_mode": ("pretrained",),
    "head_hidden": ("pretrained",),
    "textcnn_filters": ("textcnn",),
    "textcnn_kernel_sizes": ("textcnn",),
    "rnn_hidden_size": ("lstm", "gru"),
    "rnn_bidirectional": ("lstm", "gru"),
    "text_layers": ("lstm", "gru", "transformer"),
    "transformer_heads": ("transformer",),
    "transformer_ff_dim": ("transformer",),
}

# Text fields of Seedlab's own word tokenizer: a pretrained encoder reads text with its own.
WORD_TOKENIZER_FIELDS = ("vocab_size", "min_frequency", "lowercase")

# Read only with one value of another field: (field, the values that use it).
CHOICE_FIELDS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "momentum": ("optimizer", ("sgd",)),
    "step_size": ("lr_schedule", ("step",)),
    "gamma": ("lr_schedule", ("step",)),
    "lora_rank": ("encoder_mode", ("lora",)),
}
# Image fields a pretrained backbone decides itself (its input size, RGB, its normalisation),
# and the text head's dropout, which an image backbone's head reads as `dropout`.
BACKBONE_DECIDES = ("image_size", "channels", "normalize", "text_dropout", "lora_rank")


def family_of(model: str, kind: str) -> str:
    """The family a `model` value trains on this kind of data (auto: the kind's default)."""
    if model in MODEL_FAMILIES:
        return model
    return DEFAULT_MODEL.get(kind, "mlp")


def field_applies(name: str, kind: str, values: Mapping[str, Any]) -> bool:
    """Whether field `name` changes a run on `kind` data with these other `values`."""
    for field_kind, names in KIND_FIELDS.items():
        if name in names and field_kind != kind:
            return False
    if kind == "image" and family_of(str(values.get("model", "auto")), kind) == "pretrained":
        if name in BACKBONE_DECIDES:
            return False
        if name == "dropout":
            return True
        if name.startswith("augment_") and values.get("encoder_mode", "frozen") == "frozen":
            return False  # a frozen backbone's features are computed once, unaugmented
    if name in WORD_TOKENIZER_FIELDS and family_of(str(values.get("model", "auto")), kind) == (
        "pretrained"
    ):
        return False
    if name in CHOICE_FIELDS and name == "lora_rank":
        family = family_of(str(values.get("model", "auto")), kind)
        return family == "pretrained" and values.get("encoder_mode") == "lora"
    if name in FAMILY_FIELDS:
        return family_of(str(values.get("model", "auto")), kind) in FAMILY_FIELDS[name]
    if name in CHOICE_FIELDS:
        other, used_with = CHOICE_FIELDS[name]
        return values.get(other) in used_with
    return True
