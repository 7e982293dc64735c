"""From a stored image dataset to normalized device tensors, plus on-device augmentation.

The fitted ImagePreprocessor is plain JSON (size, channels, per-channel mean/std, classes), so a
checkpoint stays loadable with `torch.load(weights_only=True)` and the Playground can turn a new
PIL image into a model input with `ImagePreprocessor.from_dict(d).to_tensor(image)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.core.catalog import effective_task
from engine.core.config import RunConfig
from engine.core.errors import ConfigError, DatasetError
from engine.core.settings import Settings
from engine.data.images import image_arrays, image_cache_path, image_to_array, load_index
from engine.ml.device import DeviceChoice
from engine.ml.inputs import InputSpec
from engine.ml.pipeline import PreparedData, StoredDataset
from engine.ml.prep.image_stream import StreamedImages, stream_or_memory
from engine.ml.prep.tabular import TargetEncoder, split_frame
from engine.ml.train import TrainData

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


def prepare_images(
    settings: Settings, dataset: StoredDataset, config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    """Split by seed (stratified), fit normalization on the training images, move to the device."""
    schema = dataset.schema
    task = effective_task(config.task, "classification")
    if task != "classification":
        raise ConfigError(
            "task: image datasets are for classification; use task=classification or auto"
        )
    size = config.image_size or int(schema["auto_image_size"])
    channels = int(schema["auto_channels"]) if config.channels == "auto" else int(config.channels)
    classes = list(schema["classes"])
    index = load_index(settings, dataset)
    loading = stream_or_memory(config.data_loading, len(index), (channels, size, size), choice)
    arrays = image_arrays(settings, dataset, size, channels, mmap=True)
    splits = split_frame(
        index,
        target="label",
        task="classification",
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    positions = {k: getattr(splits, k).index.to_numpy() for k in ("train", "val", "test")}
    pre = fit_preprocessor(arrays, positions["train"], classes, config.normalize)
    labels = index["label"].to_numpy(dtype=np.int64)
    cache = image_cache_path(settings, dataset, size, channels)
    if loading == "stream" and not cache.is_file():
        raise DatasetError(
            "Streaming images needs their cache file in the dataset's folder, which could not be "
            "written (read-only?). Make the data folder writable, or use data_loading=memory."
        )

    def tensors(part: str) -> tuple[torch.Tensor | StreamedImages, torch.Tensor]:
        y = torch.from_numpy(labels[positions[part]]).to(choice.device)
        if loading == "stream":
            rows = positions[part]
            return StreamedImages(
                cache, rows, pre.normalize, choice, workers=config.loader_workers
            ), y
        # uint8 crosses to the device (4× less to copy), then becomes float there.
        x = pre.normalize(torch.from_numpy(arrays[positions[part]]).to(choice.device))
        return x, y

    x_train, y_train = tensors("train")
    x_val, y_val = tensors("val")
    x_test, _ = tensors("test")
    train_data = TrainData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        task=task,
        n_outputs=len(classes),
        spec=InputSpec(kind="image", shape=(channels, size, size)),
        augment=make_augment(config, pre),
    )
    test_rows = splits.test
    folder = Path(dataset.path)

    def describe_test(rows: Sequence[int]) -> list[dict[str, Any]]:
        picked = test_rows.iloc[list(rows)]
        return [
            {"image": str(folder / file), "source": source}
            for file, source in zip(picked["file"], picked["source"], strict=True)
        ]

    return PreparedData(
        train_data,
        x_test,
        labels[positions["test"]],
        pre,
        TargetEncoder(task="classification", classes=classes),
        split_sizes={k: len(v) for k, v in positions.items()},
        stratified=bool(splits.stratified),  # a numpy bool would not serialize to JSON
        task=task,
        describe_test=describe_test,
    )
