"""A stored image dataset read back: its folder, its index, and every image as one uint8 array
(decoded once per size and cached as `cache/<size>x<channels>.npy`). Pure: no database;
training (engine/ml/prep/images.py) and the Datasets page read images through here.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.stored import StoredDataset


def dataset_dir(settings: Settings, record: StoredDataset) -> Path:
    path = settings.resolve(record.path)
    if not (path / "index.parquet").is_file():
        raise DatasetError(
            f"The files of image dataset {record.name!r} are missing "
            f"({path}). Upload the ZIP again, or restore SEEDLAB_HOME from a backup."
        )
    return path


def load_index(settings: Settings, record: StoredDataset) -> pd.DataFrame:
    """One row per stored image: file (relative to the dataset folder), source, label, …"""
    return pd.read_parquet(dataset_dir(settings, record) / "index.parquet")


def image_to_array(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """A PIL image as a (size, size, channels) uint8 array: upright, alpha on white, stretched
    to a square (the aspect ratio is not kept; a square crop would cut off objects)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.array(image, dtype=np.uint8)  # a writable copy (torch refuses read-only)
    return array[:, :, None] if channels == 1 else array


def _decode_file(path: Path, size: int, channels: int) -> np.ndarray:
    with Image.open(path) as image:
        if image.format == "JPEG":
            # Let libjpeg decode at a reduced scale when the target is much smaller (fast).
            image.draft("L" if channels == 1 else "RGB", (size, size))
        return image_to_array(image, size, channels)


def image_arrays(
    settings: Settings, record: StoredDataset, size: int, channels: int, *, mmap: bool = False
) -> np.ndarray:
    """Every image of the dataset as (N, size, size, channels) uint8, in index order (cached).

    The cache is a .npy file written image by image into a memory map, so building it never
    holds the whole set in memory; with `mmap` the array returned is that map (read-only, pages
    loaded on access), for sets streamed from disk.
    """
    cache = image_cache_path(settings, record, size, channels)
    index = load_index(settings, record)
    shape = (len(index), size, size, channels)
    if cache.is_file():
        try:
            array = np.load(cache, mmap_mode="r")
        except (OSError, ValueError):
            array = None  # a damaged cache is rebuilt
        if array is not None and array.shape == shape:
            return array if mmap else np.array(array)
    folder = dataset_dir(settings, record)
    try:
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_name(f".{uuid.uuid4().hex}.npy")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    except OSError:  # a read-only dataset folder: decode into memory, no cache
        tmp, array = None, np.empty(shape, dtype=np.uint8)
    try:
        for i, rel in enumerate(index["file"]):
            try:
                array[i] = _decode_file(folder / rel, size, channels)
            except OSError as exc:
                raise DatasetError(
                    f"Stored image {rel} of dataset {record.name!r} cannot "
                    f"be read ({exc}). Upload the ZIP again."
                ) from None
    except BaseException:
        if tmp is not None:
            del array
            tmp.unlink(missing_ok=True)
        raise
    if tmp is None:
        return array
    array.flush()
    del array
    os.replace(tmp, cache)  # atomic: two runs caching at once never see half a file
    array = np.load(cache, mmap_mode="r")
    return array if mmap else np.array(array)


def image_cache_path(settings: Settings, record: StoredDataset, size: int, channels: int) -> Path:
    return dataset_dir(settings, record) / "cache" / f"{size}x{channels}.npy"


def sample_files(
    settings: Settings,
    record: StoredDataset,
    per_class: int = 8,
) -> dict[str, list[Path]]:
    """Up to per_class stored image paths for each class (the first ones), for previews."""
    folder = dataset_dir(settings, record)
    index = load_index(settings, record)
    classes = record.schema["classes"]
    out: dict[str, list[Path]] = {}
    for label, group in index.groupby("label", sort=True):
        out[classes[int(label)]] = [folder / f for f in group["file"].head(per_class)]
    return out
