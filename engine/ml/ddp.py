"""Data-parallel training with PyTorch DDP: the few things the training loop asks of it.

Every process (rank) builds the same split and draws the same epoch order from the same seed;
each takes a strided share of every global batch, so `batch_size` stays the number of rows per
optimizer step, whatever the number of processes. The model is wrapped in
DistributedDataParallel (gradients averaged over the ranks each step), checkpoints and
validation use the unwrapped model, and every decision that ends the loop (cancel, early stop,
a non-finite loss) is taken together, so no rank is left waiting in a collective.

With one process (`SINGLE`) every method is the identity: the single-process path is unchanged.
Knows nothing of the database (engine/ml/train.py imports it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from engine.core.errors import ConfigError
from engine.ml.device import DeviceChoice

# A collective that waits longer than this means a peer is stuck, not slow: fail the run.
GROUP_TIMEOUT = timedelta(minutes=10)
# The process that started this one (the worker, or torchrun under it): when it dies this
# process is re-parented, so comparing with it tells an orphan.
_LAUNCHER_PID = os.getppid()


@dataclass
class DataParallel:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    # Where collectives' tensors live: the training device (NCCL needs CUDA tensors).
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def place(self, choice: DeviceChoice) -> DeviceChoice:
        """The rank's device: on CUDA, the GPU numbered LOCAL_RANK (one GPU per process)."""
        if not self.active or choice.device.type != "cuda":
            self.device = choice.device
            return choice
        visible = torch.cuda.device_count()
        if self.world > visible:
            raise ConfigError(
                f"processes={self.world} on the GPU needs {self.world} GPUs, one per process, "
                f"but this run sees {visible}. Use processes={max(1, visible)}, or device=cpu."
            )
        torch.cuda.set_device(self.local_rank)
        self.device = torch.device("cuda", self.local_rank)
        return DeviceChoice(self.device, choice.autocast_dtype)

    def check_batch(self, batch_size: int) -> None:
        if self.active and batch_size < self.world:
            raise ConfigError(
                f"batch_size={batch_size} is smaller than processes={self.world}: each process "
                f"needs at least one row of every batch. Use batch_size >= {self.world}."
            )

    def share_epoch(self, order: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, int]:
        """This rank's rows of an epoch and its batch size: row j of each global batch goes to
        rank j % world. A last global batch smaller than the world is dropped (a rank with no
        rows would average over nothing)."""
        if not self.active:
            return order, batch_size
        n = len(order)
        last = n % batch_size
        if 0 < last < self.world:
            n -= last
        position = torch.arange(n, device=order.device) % batch_size
        mine = order[:n][position % self.world == self.rank]
        return mine, len(range(self.rank, batch_size, self.world))

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.active:
            return model
        on_gpu = self.device.type == "cuda"
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if on_gpu else None
        )

    def all_mean(self, value: float | torch.Tensor, weight: float = 1.0) -> float:
        """The weighted mean of `value` over the ranks (the value itself with one process)."""
        if not self.active:
            return value.item() if isinstance(value, torch.Tensor) else float(value)
        pair = torch.stack(
            [torch.as_tensor(value, dtype=torch.float64) * weight, torch.tensor(float(weight))]
        ).to(self.device, torch.float64)
        dist.all_reduce(pair)
        return (pair[0] / pair[1]).item()

    def agree(self, flag: bool) -> bool:
        """Rank 0's answer, on every rank (only rank 0 reads the database)."""
        if not self.active:
            return flag
        decision = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(decision, src=0)
        return bool(decision.item())

    def augment_generator(
        self, generator: torch.Generator, seed: int, epoch: int
    ) -> torch.Generator:
        """The generator for image augmentation. With one process the epoch-order generator (as
        before); with several, one of the rank's own, reseeded each epoch (so a resumed run
        draws what an uninterrupted one would): the order generator must stay the same on
        every rank, and ranks with different share sizes would draw it apart."""
        if not self.active:
            return generator
        own = torch.Generator(device=generator.device)
        return own.manual_seed(seed * 1_000_003 + epoch * 1_009 + self.rank + 1)


SINGLE = DataParallel()


def current() -> DataParallel:
    """This process's place in the initialised process group, or SINGLE without one."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return DataParallel()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DataParallel(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local)


def launched_as_rank() -> bool:
    """Started by torchrun (or another launcher setting its env) as one of several processes."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def start_group() -> bool:
    """Join the process group from torchrun's env unless one exists already (Ray Train's
    TorchTrainer initialises its own). Returns whether this call created it (then the caller
    destroys it). gloo carries CPU tensors, NCCL CUDA ones."""
    if not launched_as_rank() or dist.is_initialized():
        return False
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available():
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend, timeout=GROUP_TIMEOUT)
    return True


def end_group(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def launcher_alive(worker_pid: int) -> bool:
    """Whether the worker that started this run is still its supervisor. A single process's
    parent is the worker; a torchrun rank's parent is torchrun, whose parent is the worker (read
    from /proc; where there is none, only torchrun is checked)."""
    parent = os.getppid()
    if not launched_as_rank():
        return parent == worker_pid
    if parent != _LAUNCHER_PID:
        return False  # torchrun died: this rank is an orphan
    try:
        stat = Path(f"/proc/{parent}/stat").read_text()
    except OSError:
        return True
    # Fields after the command name (which may hold spaces): state, ppid, ...
    return int(stat.rsplit(")", 1)[1].split()[1]) == worker_pid
