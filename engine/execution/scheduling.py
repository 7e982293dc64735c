"""Which device a claimed run gets: a pure function over the worker's devices and its load.

Kept free of torch, processes and the DB so every rule is unit-tested on fake device lists
(the test suite never needs a GPU).

Rules: each GPU runs at most `gpu_cap` runs at once, the CPU at most `cpu_cap`. A run's config
asks for `cuda`, `cpu` or `auto`; `auto` means a GPU when the machine has one (it waits for a
free GPU rather than crawl on the CPU) and the CPU otherwise. A `cuda` run on a machine without
GPUs is given the CPU slot so its runner fails at once with a message that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Slot:
    """Where a run goes: kind 'cuda' with the GPU's index, or kind 'cpu' (index None)."""

    kind: str
    index: int | None = None

    @property
    def key(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else self.kind  # 'cpu' or 'ray'

    def visible_devices(self) -> str:
        """CUDA_VISIBLE_DEVICES for the runner: only its GPU, or none for a CPU run."""
        return "" if self.kind == "cpu" else str(self.index)


def gpu_indices(devices: list[dict[str, Any]]) -> list[int]:
    return [int(d["index"]) for d in devices if d.get("kind") == "cuda"]


def free_requests(
    devices: list[dict[str, Any]], load: dict[str, int], *, gpu_cap: int, cpu_cap: int
) -> list[str]:
    """The `device` config values a run may have to be claimable now (for claim_next_run)."""
    gpus = gpu_indices(devices)
    gpu_free = any(load.get(f"cuda:{i}", 0) < gpu_cap for i in gpus)
    cpu_free = load.get("cpu", 0) < cpu_cap
    wanted: list[str] = []
    if gpu_free:
        wanted += ["cuda", "auto"]
    if cpu_free:
        wanted.append("cpu")
        if not gpus:
            wanted += ["auto", "cuda"]
    return sorted(set(wanted))


def assign_slot(
    requested: str,
    devices: list[dict[str, Any]],
    load: dict[str, int],
    *,
    gpu_cap: int,
    cpu_cap: int,
) -> Slot | None:
    """The slot for a run asking for `requested` ('auto' | 'cpu' | 'cuda'), or None if every
    slot it may use is full. Among GPUs, the least loaded wins (lowest index on a tie)."""
    gpus = gpu_indices(devices)
    cpu = Slot("cpu") if load.get("cpu", 0) < cpu_cap else None
    if requested == "cpu":
        return cpu
    if not gpus:
        return cpu  # 'cuda' without a GPU: its runner fails with the message that says why
    free = [i for i in gpus if load.get(f"cuda:{i}", 0) < gpu_cap]
    if not free:
        return None
    best = min(free, key=lambda i: (load.get(f"cuda:{i}", 0), i))
    return Slot("cuda", best)


def total_slots(devices: list[dict[str, Any]], *, gpu_cap: int, cpu_cap: int) -> int:
    return cpu_cap + gpu_cap * len(gpu_indices(devices))
