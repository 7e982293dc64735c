"""The `pretrained` family on images: a Hugging Face vision backbone (ResNet, ConvNeXt, ViT…),
its pooled features, and a new head. The text encoder's model (engine/ml/models/pretrained.py)
with an image branch: the same head, modes, checkpoints and Run page facts.

Two modes (config.encoder_mode): `frozen` (only the head learns; the backbone reads each image
once per run, engine/ml/prepare_pretrained_image.py caches its features) and `full` (every
weight). The model takes normalised images (N, 3, H, W) at the backbone's input size, or the
pooled features (N, width) the frozen backbone already computed, which go straight to the head.
The whole backbone stays in the state dict, so a checkpoint and an export are self-contained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from engine.core.config import RunConfig
from engine.core.errors import ConfigError
from engine.ml.inputs import InputSpec
from engine.ml.models.pretrained import PretrainedTextModel, _encoder

# Transformers whose class token is the image's summary (the classifier heads read it); the
# convolutional backbones give a global-average-pooled `pooler_output` instead.
CLASS_TOKEN_TYPES = frozenset({"vit", "deit", "beit", "dinov2", "data2vec-vision"})


def backbone_width(hf_config: Mapping[str, Any]) -> int:
    """The width of a backbone's pooled features, from its config.json."""
    for key in ("neck_hidden_sizes", "hidden_sizes"):  # MobileViT, ResNet / ConvNeXt
        sizes = hf_config.get(key)
        if sizes:
            return int(sizes[-1])
    width = hf_config.get("hidden_size")
    if not width:
        raise ConfigError(
            "This image backbone's config.json names no feature width (hidden_sizes or "
            "hidden_size); pick a ResNet, ConvNeXt or ViT backbone."
        )
    return int(width)


class PretrainedImageModel(PretrainedTextModel):
    """PretrainedTextModel's head, modes and training facts over a vision backbone."""

    def __init__(
        self,
        backbone: nn.Module,
        width: int,
        head_hidden: int,
        dropout: float,
        n_outputs: int,
        mode: str,
        model_type: str,
    ) -> None:
        super().__init__(backbone, width, head_hidden, dropout, n_outputs, 0, mode)
        self.class_token = model_type in CLASS_TOKEN_TYPES

    @property
    def embed(self) -> nn.Module:  # explanations of images read pixels, not token embeddings
        raise AttributeError("an image backbone has no token embedding table")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (N, width) of normalised images (N, 3, H, W)."""
        out = self.encoder(pixel_values=images)
        if self.class_token:
            return out.last_hidden_state[:, 0]
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:  # no pooler: average the last feature map (or the tokens)
            hidden = out.last_hidden_state
            return hidden.mean(dim=(2, 3)) if hidden.ndim == 4 else hidden.mean(dim=1)
        return pooled.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x if x.ndim == 2 else self.encode(x)
        return self.head(features)

    def describe_training(self) -> dict[str, Any]:
        return {**super().describe_training(), "input": "image"}


def build_pretrained_image(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    if not spec.encoder:
        raise ConfigError(
            "model pretrained on images reads images prepared at the backbone's input size; "
            "train it again (the run prepares them so)."
        )
    if config.encoder_mode == "lora":
        raise ConfigError(
            "encoder_mode lora is for pretrained text encoders; for an image backbone use "
            "frozen (fast on a CPU) or full fine-tuning."
        )
    hf = spec.encoder.get("config") or {}
    return PretrainedImageModel(
        _encoder(spec),
        int(spec.encoder.get("hidden_size") or backbone_width(hf)),
        config.head_hidden,
        config.dropout,
        n_outputs,
        config.encoder_mode,
        str(hf.get("model_type", "")),
    )
