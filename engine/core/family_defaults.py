"""Hyperparameters each model family wants when the user did not set them.

One learning rate does not suit every family: an embedding bag (a linear model over averaged
word vectors) learns slowly at AdamW's usual 1e-3 and wants about 1e-2, as fastText trains;
a Transformer encoder trained from scratch is unstable above ~5e-4; recurrent networks are
trained with their gradient norm clipped. These values fill only fields the user left alone:
at submit for a family named explicitly (engine/services/launch.py, engine/core/presets.py), and
for each candidate of `model=auto` (engine/ml/auto_select.py). They land in the run's config, so
the Run page shows them and a clone repeats them.

A family joins with one line here (a pretrained encoder: {"learning_rate": 2e-5}).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.config import RunConfig

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {},
    "embedding_bag": {"learning_rate": 1e-2},
    "textcnn": {"learning_rate": 1e-3},
    "lstm": {"learning_rate": 2e-3, "grad_clip_norm": 1.0},
    "gru": {"learning_rate": 2e-3, "grad_clip_norm": 1.0},
    "transformer": {"learning_rate": 5e-4, "grad_clip_norm": 1.0},
    "cnn": {},
    "resnet": {},
}

_BASE = RunConfig()


def family_default_fields() -> set[str]:
    """Every field some family sets (the New run form refills these when the family changes)."""
    return {name for values in FAMILY_DEFAULTS.values() for name in values}


def family_defaults(family: str) -> dict[str, Any]:
    """The family's own values (empty for a family with none)."""
    return dict(FAMILY_DEFAULTS.get(family, {}))


def fill_family_defaults(
    values: Mapping[str, Any], family: str, user_set: set[str] | None = None
) -> dict[str, Any]:
    """`values` with the family's defaults in every field the user did not set.

    `user_set` names the fields the user gave; without it (a stored config, where every field
    is written out) a field counts as unset while it holds RunConfig's own default.
    """
    out = dict(values)
    for name, value in FAMILY_DEFAULTS.get(family, {}).items():
        if user_set is not None:
            if name not in user_set:
                out[name] = value
        elif name not in out or out[name] == getattr(_BASE, name):
            out[name] = value
    return out
