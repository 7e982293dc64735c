"""Images streamed from disk, for image sets too big to hold as tensors on the device.

The resized images already sit in one uint8 `.npy` cache per (size, channels)
(`image_data.image_arrays`). A stream reads batches of its rows through a memory map with a
`DataLoader`: worker processes copy the rows (in file order, so reads are sequential), pinned
memory lets the copy to a GPU overlap the previous step, and the uint8 batch is normalized on the
device, as the in-memory path does. The training loop takes a stream wherever it takes a tensor
(`engine/ml/train.py`), and the batch order still comes from the loop's seeded generator, so a
streamed run is as reproducible and resumable as an in-memory one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.ml.device import DeviceChoice

# Bytes of float32 pixels per evaluation batch (about 64 MB whatever the image size).
EVAL_BATCH_BYTES = 64 << 20


class _CachedRows(Dataset):
    """Rows of the memory-mapped cache; the map is opened in each process that reads it (a map
    sent to a worker would be pickled as a full copy of the data)."""

    def __init__(self, path: Path, rows: np.ndarray) -> None:
        self.path, self.rows = str(path), rows
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, items: list[int]) -> torch.Tensor:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        rows = self.rows[np.asarray(items, dtype=np.int64)]
        in_file_order = np.argsort(rows, kind="stable")
        batch = np.empty((len(rows), *self._array.shape[1:]), dtype=np.uint8)
        batch[in_file_order] = self._array[rows[in_file_order]]
        return torch.from_numpy(batch)

    def __getitem__(self, item: int) -> torch.Tensor:
        return self.__getitems__([item])[0]


class _Batches:
    """Index lists of one pass; the order is set before each epoch (the loader's workers stay
    alive between epochs, and batch sampling happens in this process)."""

    def __init__(self, n: int) -> None:
        self.order: Sequence[int] = range(n)
        self.batch_size = 1

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.order)
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


def _as_is(batch: torch.Tensor) -> torch.Tensor:
    return batch


def default_workers() -> int:
    """One loader process per core left over by the training process, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class StreamedImages:
    """One split of an image set, read batch by batch from the cache file."""

    def __init__(
        self,
        path: Path,
        rows: np.ndarray,
        normalize: Callable[[torch.Tensor], torch.Tensor],
        choice: DeviceChoice,
        *,
        workers: int = -1,
    ) -> None:
        self.path, self.rows, self.normalize = Path(path), np.asarray(rows), normalize
        self.device = choice.device
        self.workers = default_workers() if workers < 0 else workers
        self.sample_shape = tuple(np.load(self.path, mmap_mode="r").shape[1:])  # (H, W, C)
        self._sampler = _Batches(len(self.rows))
        self._loader: DataLoader | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _iterate(self, order: Sequence[int], batch_size: int) -> Iterator[torch.Tensor]:
        if self._loader is None or self._sampler.batch_size != batch_size:
            self._sampler.batch_size = batch_size
            self._loader = DataLoader(
                _CachedRows(self.path, self.rows),
                batch_sampler=self._sampler,
                collate_fn=_as_is,
                num_workers=self.workers,
                pin_memory=self.device.type == "cuda",
                persistent_workers=self.workers > 0,
                prefetch_factor=4 if self.workers > 0 else None,
                # Its own generator for the workers' seeds: drawing them from the global RNG
                # would shift the dropout masks, and a streamed run would train differently.
                generator=torch.Generator(),
            )
        self._sampler.order = order
        for raw in self._loader:
            yield self.normalize(raw.to(self.device, non_blocking=True))

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
        """Normalized (B, C, H, W) batches on the device, in the given order of positions."""
        return self._iterate(order.cpu().tolist(), batch_size)

    def in_order(self) -> Iterator[torch.Tensor]:
        """Every row once, in split order, in batches of about EVAL_BATCH_BYTES (evaluation)."""
        per_image = 4 * int(np.prod(self.sample_shape))
        return self._iterate(range(len(self)), max(1, EVAL_BATCH_BYTES // per_image))

    def close(self) -> None:
        """Stop the loader's worker processes (they also stop when the stream is collected)."""
        self._loader = None


def stream_or_memory(
    mode: str, n_images: int, sample_shape: tuple[int, ...], choice: DeviceChoice
) -> str:
    """ "stream" or "memory" for `data_loading`: auto streams when the float32 images of the set
    would take more than a quarter of the device's memory (or of RAM on CPU), capped at 4 GiB
    so a shared machine keeps room for the other runs."""
    if mode != "auto":
        return mode
    needed = 4 * n_images * int(np.prod(sample_shape))
    return "stream" if needed > in_memory_budget(choice) else "memory"


def in_memory_budget(choice: DeviceChoice) -> int:
    budget = 4 << 30
    if choice.device.type == "cuda":
        total = torch.cuda.get_device_properties(choice.device).total_memory
        return min(budget, total // 4)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return budget
    return min(budget, ram // 4)
