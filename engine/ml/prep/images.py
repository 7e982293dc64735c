"""From a stored image dataset to normalized device tensors, plus on-device augmentation.

The fitted ImagePreprocessor is plain JSON (size, channels, per-channel mean/std, classes), so a
checkpoint stays loadable with `torch.load(weights_only=True)` and the Playground can turn a new
PIL image into a model input with `ImagePreprocessor.from_dict(d).to_tensor(image)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.core.config import RunConfig
from engine.data.image_store import image_to_array

# ITU-R 601 luma weights: the grayscale a saturation change blends towards.
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class ImagePreprocessor:
    image_size: int
    channels: int
    mean: list[float]  # per channel, on the 0..1 scale
    std: list[float]
    classes: list[str]
    resize: str = "stretch"  # the whole image is resized to a square; nothing is cropped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImagePreprocessor:
        return cls(**data)

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, H, W, C) uint8 → (N, C, H, W) float32, standardized per channel."""
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """One PIL image as the model's input, shape (channels, size, size)."""
        array = image_to_array(image, self.image_size, self.channels)
        return self.normalize(torch.from_numpy(array)[None])[0]


def fit_preprocessor(
    images: np.ndarray, rows: np.ndarray, classes: list[str], normalize: bool
) -> ImagePreprocessor:
    """Per-channel mean/std of the training images (`rows` of `images`, 0..1 scale), or 0/1
    when not normalizing. Summed chunk by chunk, so a memory-mapped set is never loaded whole."""
    _, size, _, channels = images.shape
    if not normalize:
        return ImagePreprocessor(size, channels, [0.0] * channels, [1.0] * channels, classes)
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    ordered = np.sort(rows)  # sequential reads of a memory map
    for start in range(0, len(ordered), FIT_CHUNK):
        pixels = images[ordered[start : start + FIT_CHUNK]].reshape(-1, channels) / 255.0
        total += pixels.sum(axis=0)
        squares += np.square(pixels).sum(axis=0)
        count += len(pixels)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)  # a constant channel stays as it is
    return ImagePreprocessor(size, channels, mean.tolist(), std.tolist(), classes)


FIT_CHUNK = 1024  # images per chunk when fitting the normalization


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def make_augment(config: RunConfig, pre: ImagePreprocessor) -> Augment | None:
    """Random flip / shift / rotation / colour jitter of a normalized (N, C, H, W) batch, as
    tensor ops on its device; the same generator state gives the same batch."""
    flip, shift = config.augment_flip, config.augment_crop
    max_angle, jitter = math.radians(config.augment_rotation), config.augment_color
    if not (flip or shift or max_angle or jitter):
        return None

    def augment(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, channels, height, width = xb.shape
        device = xb.device

        def uniform(*shape: int) -> torch.Tensor:  # in [-1, 1)
            return torch.rand(*shape, generator=generator, device=device) * 2 - 1

        if jitter:
            mean = torch.tensor(pre.mean, device=device).view(1, -1, 1, 1)
            std = torch.tensor(pre.std, device=device).view(1, -1, 1, 1)
            x = xb * std + mean  # back to 0..1, where brightness and contrast mean something
            x = x * (1 + jitter * uniform(n, 1, 1, 1))
            level = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - level) * (1 + jitter * uniform(n, 1, 1, 1)) + level
            if channels == 3:
                luma = torch.tensor(_LUMA, device=device).view(1, 3, 1, 1)
                gray = (x * luma).sum(dim=1, keepdim=True)
                x = (x - gray) * (1 + jitter * uniform(n, 1, 1, 1)) + gray
            xb = (x.clamp(0, 1) - mean) / std
        if flip:
            mirrored = torch.rand(n, generator=generator, device=device) < 0.5
            xb = torch.where(mirrored.view(-1, 1, 1, 1), xb.flip(-1), xb)
        if shift or max_angle:
            angle = uniform(n) * max_angle
            # Whole-pixel shifts (in grid units: 2 / side), like a crop of a zero-padded image;
            # zero is the mean colour after normalization.
            dx = torch.randint(-shift, shift + 1, (n,), generator=generator, device=device)
            dy = torch.randint(-shift, shift + 1, (n,), generator=generator, device=device)
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.stack(
                [
                    torch.stack([cos, -sin, dx * (2.0 / width)], dim=1),
                    torch.stack([sin, cos, dy * (2.0 / height)], dim=1),
                ],
                dim=1,
            )
            grid = F.affine_grid(theta, list(xb.shape), align_corners=False)
            xb = F.grid_sample(xb, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return xb

    return augment
