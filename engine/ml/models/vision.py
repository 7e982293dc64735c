"""Image classifiers: a plain CNN and a small ResNet, sized from the config and the input shape.

Both downsample only while the feature map is at least 4 pixels wide, so the same settings
work on 8×8 digits and on 64×64 photos, and both end in global average pooling, so the
classifier head does not depend on the image size.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.core.config import RunConfig
from engine.ml.inputs import InputSpec
from engine.ml.models.mlp import ACTIVATIONS

MAX_WIDTH = 512


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


def _widths(base: int, depth: int) -> list[int]:
    return [min(MAX_WIDTH, base * 2**i) for i in range(depth)]


def _head(width: int, n_outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        nn.Linear(width, n_outputs),
    )


def build_cnn(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    """cnn_depth blocks of conv3×3 → batch norm → activation → 2×2 max-pool, then a linear head."""
    channels, side, _ = spec.shape
    layers: list[nn.Module] = []
    for width in _widths(config.cnn_width, config.cnn_depth):
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=not config.batch_norm),
            _norm(width, config.batch_norm),
            ACTIVATIONS[config.activation](),
        ]
        if side >= 4:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        channels = width
    return nn.Sequential(*layers, _head(channels, n_outputs, config.dropout))


class ResidualBlock(nn.Module):
    """Two conv3×3 with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, batch_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm),
            _norm(c_out, batch_norm),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batch_norm),
            _norm(c_out, batch_norm),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batch_norm),
                _norm(c_out, batch_norm),
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def build_resnet(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    """A stem conv, then cnn_depth stages of resnet_blocks residual blocks; each stage after the
    first halves the side and doubles the width."""
    channels, side, _ = spec.shape
    widths = _widths(config.cnn_width, config.cnn_depth)
    layers: list[nn.Module] = [
        nn.Conv2d(channels, widths[0], 3, padding=1, bias=not config.batch_norm),
        _norm(widths[0], config.batch_norm),
        nn.ReLU(inplace=True),
    ]
    c_in = widths[0]
    for stage, width in enumerate(widths):
        for block in range(config.resnet_blocks):
            stride = 2 if stage > 0 and block == 0 and side >= 4 else 1
            side //= stride
            layers.append(ResidualBlock(c_in, width, stride, config.batch_norm))
            c_in = width
    return nn.Sequential(*layers, _head(c_in, n_outputs, config.dropout))
