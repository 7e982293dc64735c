"""Model builders: from a RunConfig, the input spec and the output count to an nn.Module.

Each family registers one builder in MODEL_BUILDERS; the catalog says which dataset kind it takes.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from engine.core.catalog import model_family_for
from engine.core.config import RunConfig
from engine.core.errors import ConfigError
from engine.ml.inputs import InputSpec
from engine.ml.models.mlp import build_mlp
from engine.ml.models.pretrained import build_pretrained
from engine.ml.models.pretrained_image import build_pretrained_image
from engine.ml.models.text import TEXT_BUILDERS
from engine.ml.models.vision import build_cnn, build_resnet


def _mlp(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return build_mlp(
        spec.shape[0], n_outputs, config.hidden_sizes, config.activation, config.dropout
    )


def _pretrained(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    """One family: the data's kind picks a text encoder or a vision backbone."""
    if spec.kind == "image":
        return build_pretrained_image(config, spec, n_outputs)
    return build_pretrained(config, spec, n_outputs)


Builder = Callable[[RunConfig, InputSpec, int], nn.Module]

MODEL_BUILDERS: dict[str, Builder] = {
    "mlp": _mlp,
    **TEXT_BUILDERS,
    "pretrained": _pretrained,
    "cnn": build_cnn,
    "resnet": build_resnet,
}


def build_model(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    """The model for this config and input (model=auto picks the default for the input kind)."""
    try:
        family = model_family_for(config.model, spec.kind)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    builder = MODEL_BUILDERS.get(family)
    if builder is None:
        raise ConfigError(f"model {family!r} is not available in this version of Seedlab")
    return builder(config, spec, n_outputs)
