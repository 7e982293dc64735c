"""An image dataset for a pretrained vision backbone: the backbone's input size and
normalisation (from its preprocessor_config.json), and with a frozen backbone its pooled
features, computed once per run.

engine/ml/prepare_images.py asks `backbone_input` for the size and the ImagePreprocessor (the
same JSON-only preprocessor as every image run, so checkpoints, the Playground and exports read
it unchanged), then `frozen_features` for the training and validation splits. The test split
stays as images: evaluation, exports and the Playground run the whole model on pixels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.core.pretrained import IMAGE
from engine.core.settings import Settings
from engine.ml.inputs import InputSpec
from engine.ml.models.pretrained_image import backbone_width
from engine.ml.prep.images import ImagePreprocessor
from engine.ml.prepare_pretrained import FEATURE_BATCH, FeatureExtractor, FrozenFeatures
from engine.ml.pretrained_source import resolve_base_model

log = logging.getLogger("seedlab.pretrained")

# ImageNet's mean and std: what an image processor that names none was trained with.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def input_size(processor: dict[str, Any]) -> int:
    """The side of the square the backbone reads: its centre crop when it crops, else its
    resize target ({"height": 224, …}, {"shortest_edge": 224} or 224)."""
    size: Any = processor.get("size", 224)
    if processor.get("do_center_crop") and processor.get("crop_size"):
        size = processor["crop_size"]
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge") or size.get("width") or 224
    return int(size)


@dataclass(frozen=True)
class Backbone:
    folder: Path
    size: int
    mean: list[float]
    std: list[float]
    hf_config: dict[str, Any]

    def preprocessor(self, classes: list[str]) -> ImagePreprocessor:
        # Stretched to the backbone's square (as every Seedlab image run), not its processor's
        # shorter-side resize and centre crop: nothing at the edges is cut off.
        return ImagePreprocessor(self.size, 3, list(self.mean), list(self.std), classes)

    def spec(self) -> InputSpec:
        return InputSpec(
            kind="image",
            shape=(3, self.size, self.size),
            encoder={"config": self.hf_config, "hidden_size": backbone_width(self.hf_config)},
            weights=str(self.folder),
        )


def backbone_input(settings: Settings, config: RunConfig) -> Backbone:
    """The base model's folder (downloaded now if it is a hub id not yet cached, online), its
    input size and its normalisation."""
    from transformers import AutoConfig

    folder = resolve_base_model(config.base_model, settings, download=True, kind=IMAGE)
    try:
        processor = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"base_model {config.base_model!r}: its preprocessor_config.json cannot be read "
            f"({exc}). Save the image processor into the folder again."
        ) from None
    hf_config = json.loads(AutoConfig.from_pretrained(folder).to_json_string(use_diff=False))
    if processor.get("do_normalize", True):
        mean = [float(v) for v in processor.get("image_mean") or IMAGENET_MEAN]
        std = [float(v) for v in processor.get("image_std") or IMAGENET_STD]
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    if len(mean) == 1:  # one value for every channel
        mean, std = mean * 3, std * 3
    backbone = Backbone(folder, input_size(processor), mean, std, hf_config)
    log.info("base model %s from %s, input %d px", config.base_model, folder, backbone.size)
    return backbone


class ImageFeatureExtractor(FeatureExtractor):
    """The frozen backbone turning normalised images (a tensor, or a stream from the disk
    cache) into pooled features, chunk by chunk."""

    @torch.inference_mode()
    def features(self, images: Any) -> torch.Tensor:  # noqa: ANN401 - a tensor or a stream
        if self._model is None:
            from engine.ml.models.pretrained_image import build_pretrained_image

            # The same builder and weights as the trained model, so its frozen backbone gives
            # exactly these features when it later reads the images itself.
            self._model = build_pretrained_image(self.config, self.spec, 1)
            self._model = self._model.to(self.device).eval()
        chunks: Iterator[torch.Tensor] = (
            images.in_order()
            if hasattr(images, "in_order")
            else (images[i : i + FEATURE_BATCH] for i in range(0, len(images), FEATURE_BATCH))
        )
        parts = [self._model.encode(chunk).float() for chunk in chunks]
        width = int(self.spec.encoder["hidden_size"])  # type: ignore[index]
        return torch.cat(parts) if parts else torch.empty((0, width), device=self.device)


def frozen_features(
    x_train: Any,  # noqa: ANN401 - a tensor or a stream
    x_val: Any,  # noqa: ANN401
    config: RunConfig,
    spec: InputSpec,
    device: torch.device,
) -> tuple[FrozenFeatures, FrozenFeatures]:
    """Training and validation images as features the frozen backbone computes once, on the
    first epoch that reads them (FrozenFeatures keeps the images as `.ids`)."""
    extractor = ImageFeatureExtractor(config, spec, device)
    return FrozenFeatures(x_train, extractor), FrozenFeatures(x_val, extractor)
