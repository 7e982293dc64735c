"""A stored image dataset → normalized tensors (or a stream from the disk cache) on the device;
normalization is fitted on the training images only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.catalog import effective_task, model_family_for
from engine.core.config import RunConfig
from engine.core.errors import ConfigError, DatasetError
from engine.core.settings import Settings
from engine.data.image_store import image_arrays, image_cache_path, load_index
from engine.data.stored import StoredDataset
from engine.data.versions import apply_to_index
from engine.ml.device import DeviceChoice
from engine.ml.inputs import InputSpec
from engine.ml.prep.image_stream import StreamedImages, stream_or_memory
from engine.ml.prep.images import fit_preprocessor, make_augment
from engine.ml.prep.tabular import TargetEncoder, split_frame
from engine.ml.prepared import PreparedData
from engine.ml.train import TrainData


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
    backbone = None
    if model_family_for(config.model, "image") == "pretrained":
        # A pretrained backbone reads RGB at its own input size and normalisation.
        from engine.ml.prepare_pretrained_image import backbone_input

        backbone = backbone_input(settings, config)
        size, channels = backbone.size, 3
    classes = list(schema["classes"])
    full_index = load_index(settings, dataset)
    # A version: relabelled and excluded images; the index keeps base positions (the arrays').
    index = apply_to_index(full_index, getattr(dataset, "patch", None) or {}, classes)
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
    if backbone is not None:
        pre = backbone.preprocessor(classes)
    else:
        pre = fit_preprocessor(arrays, positions["train"], classes, config.normalize)
    labels = full_index["label"].to_numpy(dtype=np.int64).copy()
    labels[index.index.to_numpy()] = index["label"].to_numpy(dtype=np.int64)
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
    spec = InputSpec(kind="image", shape=(channels, size, size))
    augment = make_augment(config, pre)
    if backbone is not None:
        spec = backbone.spec()
        if config.encoder_mode == "frozen":
            # Only the head trains: the backbone reads each image once (no augmentation).
            from engine.ml.prepare_pretrained_image import frozen_features

            x_train, x_val = frozen_features(x_train, x_val, config, spec, choice.device)
            augment = None
    train_data = TrainData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        task=task,
        n_outputs=len(classes),
        spec=spec,
        augment=augment,
    )
    test_rows = splits.test
    folder = Path(dataset.path)  # relative to SEEDLAB_HOME, as the report keeps it

    def describe_test(rows: Sequence[int]) -> list[dict[str, Any]]:
        # row_id is the image's path inside the dataset (stable across versions); "image" is
        # the stored file for sets kept one file per image, else a name only: read the bytes
        # with image_store.described_image_bytes.
        picked = test_rows.iloc[list(rows)]
        files = picked["file"] if "file" in picked.columns else picked["path"]
        return [
            {"image": str(folder / file), "dataset": str(folder), "row_id": path, "source": source}
            for file, path, source in zip(files, picked["path"], picked["source"], strict=True)
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
        # An image's row id is its path inside the dataset.
        test_row_ids=test_rows["path"].astype(str).tolist(),
    )
