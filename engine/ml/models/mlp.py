"""The multilayer perceptron for tables, and the activations every family chooses from."""

from __future__ import annotations

from torch import nn

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
