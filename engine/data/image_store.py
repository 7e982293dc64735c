"""A stored image dataset read back, through one small API whatever its layout:

    store = open_store(folder)            # or store_for(settings, record)
    store.paths()                         # row ids: each image's path inside the dataset
    store.labels()                        # class names, in the same order
    store.items(patch)                    # (path, class) of a version: labels/exclusions only
    store.read_bytes("cat/001.png")       # the uploaded bytes, never re-encoded
    store.read_image("cat/001.png")       # a loaded PIL image

Two layouts, both read here:
- packed (every dataset ingested now): `images.pack` holds a 16-byte header then every image's
  original bytes back to back; `index.parquet` has one row per image (path, source, label,
  offset, length, crc32, width, height, mode, format). Reading an image is one slice of a
  memory map, so 30,000 tiny images are one file, not 30,000 (each file costs a 4 KB block
  and an inode; a 5 MB ZIP had become 118 MB).
- files (datasets ingested before packs): `images/<label>/<n><suffix>` plus an index with a
  `file` column; read in place, nothing to migrate (`pack_folder` packs one if wanted).
Dataset versions share the pack: a version changes labels and exclusions keyed by path, never
bytes. Every image as one uint8 array is decoded once per size and cached as
`cache/<size>x<channels>.npy`. Pure: no database; training, the Datasets page, reports and
bundles read images through here.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import shutil
import uuid
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.image_zip import member_parts, wrapping_prefix
from engine.data.stored import StoredDataset

INDEX_NAME = "index.parquet"
PACK_NAME = "images.pack"
PACK_MAGIC = b"SEEDLAB-IMGPACK1"  # 16 bytes: a pack, version 1
PACK_COLUMNS = ["path", "source", "label", "offset", "length", "crc32"]


class ImageStore:
    """One image dataset's images and index; open with `open_store` (closes its map on exit)."""

    def __init__(self, folder: Path, index: pd.DataFrame, classes: list[str], name: str) -> None:
        self.folder, self.index, self.classes, self.name = folder, index, classes, name
        self.packed = "offset" in index.columns
        self._position = {p: i for i, p in enumerate(index["path"])}
        self._map: mmap.mmap | None = None
        if self.packed:
            self._map = _open_pack(folder / PACK_NAME, index, name)
            self._offsets = index["offset"].to_numpy(dtype=np.int64)
            self._lengths = index["length"].to_numpy(dtype=np.int64)
            self._crcs = index["crc32"].to_numpy(dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __enter__(self) -> ImageStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def paths(self) -> list[str]:
        """Every image's path inside the dataset ("cat/001.png"), its stable row id."""
        return self.index["path"].tolist()

    def labels(self) -> list[str]:
        """Every image's class name, in the order of `paths()`."""
        return [self.classes[int(i)] for i in self.index["label"]]

    def label_indices(self) -> np.ndarray:
        return self.index["label"].to_numpy(dtype=np.int64)

    def position(self, path: str) -> int:
        try:
            return self._position[path]
        except KeyError:
            raise DatasetError(
                f"Image dataset {self.name!r} has no image {path!r}. Check the path "
                "(as shown in the data browser, e.g. cat/001.png)."
            ) from None

    def version_index(self, patch: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The index as a dataset version sees it: `patch` ({"labels": {path: class name},
        "excluded": [path, …]}, cumulative against this store, as dataset_versions keeps it)
        relabels and drops rows; `position` is each row's place in the pack and in the array
        cache, so every version reads the same bytes and the same cache, never a copy."""
        patch = patch or {}
        index = self.index.assign(position=np.arange(len(self.index)))
        relabel = dict(patch.get("labels") or {})
        excluded = set(patch.get("excluded") or [])
        unknown = sorted((set(relabel) | excluded) - set(self._position))
        if unknown:
            raise DatasetError(
                f"Image dataset {self.name!r} has no image {unknown[0]!r} "
                f"({len(unknown)} unknown path(s) in the change). Use the paths shown in the "
                "data browser (e.g. cat/001.png)."
            )
        if relabel:
            label_of = {c: i for i, c in enumerate(self.classes)}
            bad = sorted({str(v) for v in relabel.values()} - set(label_of))
            if bad:
                raise DatasetError(
                    f"{bad[0]!r} is not a class of image dataset {self.name!r}; use one of "
                    f"{', '.join(self.classes)}."
                )
            labels = index["label"].to_numpy(dtype=np.int64).copy()
            for path, label in relabel.items():
                labels[self._position[path]] = label_of[str(label)]
            index["label"] = labels
        if excluded:
            index = index[~index["path"].isin(excluded)]
        return index.reset_index(drop=True)

    def items(self, patch: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
        """(path, class name) of every image of a version (`patch` as in version_index)."""
        index = self.version_index(patch)
        return [
            (p, self.classes[int(i)]) for p, i in zip(index["path"], index["label"], strict=True)
        ]

    def read_bytes(self, path: str) -> bytes:
        """The image's bytes as uploaded."""
        return self.read_bytes_at(self.position(path))

    def read_bytes_at(self, position: int) -> bytes:
        if self._map is None:
            if not self.packed:
                return _read_file(self.folder / self.index["file"].iat[position], self.name)
            raise DatasetError(f"The image store of {self.name!r} is closed; open it again.")
        offset, length = int(self._offsets[position]), int(self._lengths[position])
        data = self._map[offset : offset + length]
        if zlib.crc32(data) != int(self._crcs[position]):
            raise DatasetError(
                f"Image {self.index['path'].iat[position]!r} of dataset {self.name!r} is "
                "damaged in its pack file (checksum mismatch). Upload the ZIP again, or "
                "restore SEEDLAB_HOME from a backup."
            )
        return data

    def read_image(self, path: str) -> Image.Image:
        """The image, decoded (loaded, so nothing stays open)."""
        return _open_bytes(self.read_bytes(path), path, self.name)

    def iter_bytes(self) -> Iterator[bytes]:
        """Every image's bytes in index order (in pack order: sequential reads)."""
        for position in range(len(self)):
            yield self.read_bytes_at(position)


def _read_file(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"Stored image {path.name} of dataset {name!r} cannot be read ({exc}). "
            "Upload the ZIP again."
        ) from None


def _open_bytes(data: bytes, path: str, name: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(
            f"Stored image {path!r} of dataset {name!r} cannot be decoded ({exc}). "
            "Upload the ZIP again."
        ) from None


def _open_pack(path: Path, index: pd.DataFrame, name: str) -> mmap.mmap:
    """Map the pack, refusing one that is missing, foreign or shorter/longer than its index."""
    expected = len(PACK_MAGIC) + int(index["length"].sum())
    what = f"The image pack of dataset {name!r} ({path})"
    fix = "Upload the ZIP again, or restore SEEDLAB_HOME from a backup."
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < len(PACK_MAGIC) or fh.read(len(PACK_MAGIC)) != PACK_MAGIC:
                raise DatasetError(f"{what} is not a Seedlab image pack. {fix}")
            if size != expected:
                raise DatasetError(
                    f"{what} is {size:,} bytes where its index says {expected:,}: it was "
                    f"truncated or overwritten. {fix}"
                )
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise DatasetError(f"{what} cannot be read ({exc}). {fix}") from None


def _legacy_paths(sources: list[str], files: list[str]) -> list[str]:
    """Row ids for a dataset stored before packs: its members' paths inside the dataset, as a
    new ingest computes them (the wrapping folder dropped); a repeated one keeps its file."""
    parts = [member_parts(s) for s in sources]
    prefix = wrapping_prefix(parts)
    paths, seen = [], set()
    for p, file in zip(parts, files, strict=True):
        path = "/".join(p[len(prefix) :])
        if path in seen:
            path = file
        seen.add(path)
        paths.append(path)
    return paths


def open_store(folder: Path, name: str | None = None) -> ImageStore:
    """The image store in `folder` (a dataset's folder), packed or one file per image."""
    name = name or folder.name
    index_path = folder / INDEX_NAME
    if not index_path.is_file():
        raise DatasetError(
            f"The files of image dataset {name!r} are missing ({folder}). Upload the ZIP "
            "again, or restore SEEDLAB_HOME from a backup."
        )
    index = pd.read_parquet(index_path)
    if "path" not in index.columns:  # one file per image (before packs)
        index.insert(0, "path", _legacy_paths(index["source"].tolist(), index["file"].tolist()))
    classes: list[str] = []
    schema_path = folder / "schema.json"
    if schema_path.is_file():
        classes = list(json.loads(schema_path.read_text()).get("classes", []))
    if not classes:
        classes = [str(i) for i in range(int(index["label"].max()) + 1 if len(index) else 0)]
    return ImageStore(folder, index, classes, name)


def store_for(settings: Settings, record: StoredDataset) -> ImageStore:
    store = open_store(settings.resolve(record.path), record.name)
    if record.schema.get("classes"):
        store.classes = list(record.schema["classes"])
    return store


class PackWriter:
    """Appends images to a new pack in `folder` and writes its index on `finish`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fh = (folder / PACK_NAME).open("wb")
        self._fh.write(PACK_MAGIC)
        self._offset = len(PACK_MAGIC)
        self.rows: list[dict[str, Any]] = []

    def add(self, path: str, data: bytes, **meta: Any) -> None:  # noqa: ANN401
        self._fh.write(data)
        self.rows.append(
            {
                "path": path,
                "offset": self._offset,
                "length": len(data),
                "crc32": zlib.crc32(data),
                **meta,
            }
        )
        self._offset += len(data)

    def finish(self) -> pd.DataFrame:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        index = pd.DataFrame(self.rows)
        index.to_parquet(self.folder / INDEX_NAME, index=False)
        return index

    def abort(self) -> None:
        self._fh.close()


def pack_folder(folder: Path) -> bool:
    """Pack a dataset stored one file per image, in place; False when it is already packed.

    The pack and its index are written beside the old files, checked image by image against
    them, and only then does the new index replace the old one (atomic rename) and the old
    images go: interrupted at any point, the folder still reads as one layout or the other.
    """
    store = open_store(folder)
    if store.packed:
        return False
    tmp = folder / f".pack-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        writer = PackWriter(tmp)
        meta_columns = [c for c in store.index.columns if c not in ("path", "file")]
        for position, row in enumerate(store.index.itertuples(index=False)):
            values = row._asdict()
            writer.add(
                values["path"],
                store.read_bytes_at(position),
                **{c: values[c] for c in meta_columns},
            )
        writer.finish()
        with open_store(tmp) as packed:
            for position in range(len(store)):
                if packed.read_bytes_at(position) != store.read_bytes_at(position):
                    raise DatasetError(f"Packing {folder} did not copy image {position} exactly.")
        os.replace(tmp / PACK_NAME, folder / PACK_NAME)
        os.replace(tmp / INDEX_NAME, folder / INDEX_NAME)  # from here on the folder is packed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(folder / "images", ignore_errors=True)
    return True


def dataset_dir(settings: Settings, record: StoredDataset) -> Path:
    path = settings.resolve(record.path)
    if not (path / INDEX_NAME).is_file():
        raise DatasetError(
            f"The files of image dataset {record.name!r} are missing "
            f"({path}). Upload the ZIP again, or restore SEEDLAB_HOME from a backup."
        )
    return path


def load_index(settings: Settings, record: StoredDataset) -> pd.DataFrame:
    """One row per stored image: path (its row id), source, label, width, height, …"""
    with store_for(settings, record) as store:
        return store.index


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


def _decode_bytes(data: bytes, size: int, channels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
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
    store = store_for(settings, record)
    shape = (len(store), size, size, channels)
    if cache.is_file():
        try:
            array = np.load(cache, mmap_mode="r")
        except (OSError, ValueError):
            array = None  # a damaged cache is rebuilt
        if array is not None and array.shape == shape:
            store.close()
            return array if mmap else np.array(array)
    try:
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_name(f".{uuid.uuid4().hex}.npy")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    except OSError:  # a read-only dataset folder: decode into memory, no cache
        tmp, array = None, np.empty(shape, dtype=np.uint8)
    try:
        with store:
            for i, data in enumerate(store.iter_bytes()):
                try:
                    array[i] = _decode_bytes(data, size, channels)
                except OSError as exc:
                    raise DatasetError(
                        f"Stored image {store.index['path'].iat[i]!r} of dataset "
                        f"{record.name!r} cannot be read ({exc}). Upload the ZIP again."
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


def sample_images(
    settings: Settings,
    record: StoredDataset,
    per_class: int = 8,
) -> dict[str, list[bytes]]:
    """Up to per_class images' bytes for each class (the first ones), for previews."""
    with store_for(settings, record) as store:
        out: dict[str, list[bytes]] = {}
        for label, group in store.index.groupby("label", sort=True):
            positions = [store.position(p) for p in group["path"].head(per_class)]
            out[store.classes[int(label)]] = [store.read_bytes_at(i) for i in positions]
        return out


def described_image_bytes(entry: dict[str, Any], home: Path) -> bytes | None:
    """The bytes of a test image named in a run's report (`input` of a worst mistake):
    {"dataset": folder, "row_id": path} for packed sets, {"image": file} for older reports.
    None when it is gone or would lie outside SEEDLAB_HOME."""
    root = home.resolve()
    try:
        if "dataset" in entry and "row_id" in entry:
            folder = (root / str(entry["dataset"])).resolve()
            if not folder.is_relative_to(root):
                return None
            with open_store(folder) as store:
                return store.read_bytes(str(entry["row_id"]))
        path = (root / str(entry["image"])).resolve()
        if path.is_relative_to(root) and path.is_file():
            return path.read_bytes()
    except (DatasetError, OSError, KeyError):
        return None
    return None
