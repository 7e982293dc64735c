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
from engine.ml.models.text import TEXT_BUILDERS
from engine.ml.models.vision import build_cnn, build_resnet

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def build_mlp(
    n_inputs: int, n_outputs: int, hidden_sizes: list[int], activation: str, dropout: float
) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def _mlp(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return build_mlp(
        spec.shape[0], n_outputs, config.hidden_sizes, config.activation, config.dropout
    )


Builder = Callable[[RunConfig, InputSpec, int], nn.Module]

MODEL_BUILDERS: dict[str, Builder] = {
    "mlp": _mlp,
    **TEXT_BUILDERS,
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
