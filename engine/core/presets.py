"""Quick / Balanced / Thorough: how long to train and how big a model, in one choice.

The New run form and `seedlab runs submit --preset` both use these. Balanced is what a run gets
when nothing is chosen (engine/core/defaults.py: epochs from the dataset's size, early stopping,
RunConfig's model sizes); Quick trains a smaller model for a fraction of the epochs, to see in
seconds whether the data can be learned at all; Thorough trains a larger one for longer, with
patient early stopping, so it ends when it stops improving rather than at the epoch limit.
Every value lands in the run's config, so what a preset chose is visible and a clone repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.core.config import RunConfig
from engine.core.defaults import suggest_config
from engine.core.errors import ConfigError
from engine.core.family_defaults import family_defaults
from engine.core.run_fields import family_of


@dataclass(frozen=True)
class Preset:
    label: str
    description: str
    epoch_factor: float  # times the suggested (Balanced) epoch count
    min_epochs: int
    max_epochs: int
    min_patience: int  # early stopping patience: at least this, else a fifth of the epochs


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "Quick", "a smaller model for a few epochs: a first answer in seconds", 0.3, 3, 15, 2
    ),
    "balanced": Preset(
        "Balanced", "the suggested settings for this dataset's kind and size", 1.0, 1, 10_000, 5
    ),
    "thorough": Preset(
        "Thorough",
        "a larger model for up to three times the epochs, stopped early when it stops improving",
        3.0,
        20,
        300,
        10,
    ),
}
PRESET_NAMES = tuple(PRESETS)
DEFAULT_PRESET = "balanced"

_DEFAULTS = RunConfig()

# Model sizes per family; Balanced is RunConfig's defaults, so a preset-less run is Balanced.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": {
        "quick": {"hidden_sizes": [64]},
        "thorough": {"hidden_sizes": [256, 128, 64]},
    },
    "cnn": {
        "quick": {"cnn_depth": 2, "cnn_width": 16},
        "thorough": {"cnn_depth": 3, "cnn_width": 64},
    },
    "resnet": {
        "quick": {"cnn_depth": 2, "cnn_width": 16, "resnet_blocks": 1},
        "thorough": {"cnn_depth": 3, "cnn_width": 48, "resnet_blocks": 2},
    },
    "textcnn": {
        "quick": {"embedding_dim": 64, "textcnn_filters": 50},
        "thorough": {"embedding_dim": 128, "textcnn_filters": 200},
    },
    "embedding_bag": {
        "quick": {"embedding_dim": 64},
        "thorough": {"embedding_dim": 256},
    },
    "lstm": {
        "quick": {"embedding_dim": 64, "rnn_hidden_size": 64, "text_layers": 1},
        "thorough": {"embedding_dim": 128, "rnn_hidden_size": 256, "text_layers": 2},
    },
    "gru": {
        "quick": {"embedding_dim": 64, "rnn_hidden_size": 64, "text_layers": 1},
        "thorough": {"embedding_dim": 128, "rnn_hidden_size": 256, "text_layers": 2},
    },
    "transformer": {
        "quick": {
            "embedding_dim": 64,
            "transformer_heads": 4,
            "transformer_ff_dim": 128,
            "text_layers": 1,
        },
        "thorough": {
            "embedding_dim": 128,
            "transformer_heads": 4,
            "transformer_ff_dim": 512,
            "text_layers": 2,
        },
    },
}
for _family, _sizes in SIZES.items():
    _sizes["balanced"] = {k: getattr(_DEFAULTS, k) for k in _sizes["quick"]}


def preset_fields() -> set[str]:
    """Every field some preset sets (the form refills these when the preset changes)."""
    sizes = {k for family in SIZES.values() for level in family.values() for k in level}
    return {"epochs", "early_stopping_patience", "batch_size", *sizes}


def preset_config(
    preset: str,
    kind: str,
    n_rows: int,
    model: str = "auto",
    class_counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The field values `preset` gives a run of `model` on a dataset of this kind and size."""
    if preset not in PRESETS:
        raise ConfigError(
            f"preset must be one of {', '.join(PRESET_NAMES)}; got {preset!r}. "
            "Quick is a first look, Balanced the suggested settings, Thorough the longest."
        )
    rule = PRESETS[preset]
    out = suggest_config(kind, n_rows, class_counts)
    out["model"] = model
    if preset != "balanced":
        epochs = round(out["epochs"] * rule.epoch_factor)
        out["epochs"] = min(rule.max_epochs, max(rule.min_epochs, epochs))
        out["early_stopping_patience"] = max(rule.min_patience, out["epochs"] // 5)
    out.update(SIZES.get(family_of(model, kind), {}).get(preset, {}))
    if model != "auto":  # auto: the engine gives each candidate its family's values
        out.update(family_defaults(model))
    return out


def preset_for_dataset(preset: str, dataset: Any, model: str = "auto") -> dict[str, Any]:  # noqa: ANN401 - any DatasetRecord-like
    """preset_config for a stored dataset record (kind, n_rows, schema)."""
    counts = (
        (dataset.schema or {}).get("class_counts") if dataset.task == "classification" else None
    )
    return preset_config(preset, dataset.kind, dataset.n_rows, model, counts)
