"""Resume checkpoints: everything a run needs to continue exactly where an epoch ended.

Separate from the final model checkpoint (`model.pt`, what exports and the Playground read):
this one also holds the optimizer, the LR scheduler, the GradScaler, every RNG state (the
global torch RNG that drives dropout, CUDA's, and the generator that shuffles the batch order),
the best-weights bookkeeping and the per-epoch history. It holds only tensors, numbers, strings,
lists and dicts, so it loads with `torch.load(weights_only=True)`: opening it never runs code.

Written atomically (temp file, then rename) at the end of each epoch, after the epoch's metrics
were flushed to the DB, so a checkpoint at epoch k means every point up to step k is stored and
a resumed run continues at step k + 1: no point lost, none twice.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.atomic import atomic_path, write_json_atomic
from engine.core.errors import TrainingError

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT = "seedlab-resume-v1"


class InvalidCheckpoint(TrainingError):
    """A resume checkpoint that is not one Seedlab wrote for this run: damaged or replaced.

    Said in our words: the loader's own message for a refused file advises re-loading it with
    weights_only=False, which is exactly what must never be done with a file of unknown origin.
    """


def _clone_hint(path: Path) -> str:
    run = path.parent.name
    command = f"seedlab runs clone {run}" if run.isdigit() else "seedlab runs clone RUN_ID"
    return f"Clone the run to train it again from the start ({command})."


def _invalid(path: Path, why: str) -> InvalidCheckpoint:
    return InvalidCheckpoint(
        f"The resume checkpoint {path} is not a valid Seedlab checkpoint ({why}); it was not "
        f"loaded. It is damaged or was replaced by another file. {_clone_hint(path)}"
    )


@dataclass
class TrainState:
    """The loop's state at the end of `epoch` (1-based; the next epoch to run is epoch + 1)."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    scaler: dict[str, Any] | None
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor]
    batch_order_rng: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = math.inf  # the monitored metric, signed so that lower is better
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the best one (early stopping)
    best_model: dict[str, torch.Tensor] | None = None


def _cpu(tree: Any) -> Any:
    """A copy of a state dict with every tensor on the CPU (a checkpoint must not pin a GPU)."""
    import torch

    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_cpu(v) for v in tree)
    return tree


def frozen_names(model: nn.Module) -> frozenset[str]:
    """The model's parameters that never train (a frozen or LoRA-adapted pretrained encoder)."""
    return frozenset(
        name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad
    )


def changing_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state without its frozen parameters: they are the base model's weights,
    loaded again whenever the model is built. A resume checkpoint of a run on a frozen MiniLM
    then holds its head (kBs), not the 90 MB encoder twice (model and best) every epoch."""
    frozen = frozen_names(model)
    return {k: v for k, v in model.state_dict().items() if k not in frozen}


def load_changing_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load what `changing_state` kept: every other key must be a frozen parameter."""
    frozen = frozen_names(model)
    if not frozen:
        model.load_state_dict(state)
        return
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - frozen
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"state dict mismatch: missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(result.unexpected_keys)[:3]}"
        )


def capture_state(
    *,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator,
    history: list[dict[str, float]],
    best_score: float,
    best_epoch: int,
    best_model: dict[str, torch.Tensor] | None,
    stale_epochs: int = 0,
) -> TrainState:

    import torch

    return TrainState(
        epoch=epoch,
        model=_cpu(changing_state(model)),
        optimizer=_cpu(optimizer.state_dict()),
        scheduler=scheduler.state_dict() if scheduler is not None else None,
        scaler=scaler.state_dict() if scaler.is_enabled() else None,
        torch_rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        batch_order_rng=generator.get_state(),
        history=[dict(h) for h in history],
        best_score=float(best_score),
        best_epoch=best_epoch,
        stale_epochs=stale_epochs,
        best_model=_cpu(best_model) if best_model is not None else None,
    )


def restore_state(
    state: TrainState,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator,
) -> None:
    """Put the loop's objects back as they were at the end of `state.epoch`."""
    import torch

    try:
        load_changing_state(model, state.model)
        optimizer.load_state_dict(state.optimizer)
        if scheduler is not None and state.scheduler is not None:
            scheduler.load_state_dict(state.scheduler)
        if scaler.is_enabled() and state.scaler is not None:
            scaler.load_state_dict(state.scaler)
        torch.set_rng_state(state.torch_rng)
        if state.cuda_rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state.cuda_rng[: torch.cuda.device_count()])
        generator.set_state(state.batch_order_rng)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        # A checkpoint of another model (a file copied from another run): torch's message
        # lists tensor shapes, which says nothing about what to do.
        raise InvalidCheckpoint(
            f"The run's resume checkpoint does not fit this run's model or optimizer "
            f"({type(exc).__name__}); it was probably copied from another run. Clone the run "
            "to train it again from the start."
        ) from None


def save_train_state(path: Path, state: TrainState) -> int:
    """Write atomically (temp file, then rename); returns the file's size in bytes."""
    import torch

    payload = {"format": FORMAT, **state.__dict__}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    # The epoch also in a few bytes of JSON: pages read it without importing torch. It names
    # the checkpoint it describes (size, mtime): a process killed between the two renames
    # leaves a side file of the previous checkpoint, which saved_epoch then ignores.
    stat = path.stat()
    write_json_atomic(_epoch_file(path), {"epoch": state.epoch, **_identity(stat)}, indent=None)
    return stat.st_size


def _identity(stat: os.stat_result) -> dict[str, int]:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _epoch_file(path: Path) -> Path:
    return path.with_suffix(".json")


def load_train_state(path: Path, *, mmap: bool = False) -> TrainState | None:
    """The state saved at `path`, or None when there is no file. A file that is not a resume
    checkpoint Seedlab wrote raises InvalidCheckpoint (never half a state, never unpickled)."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        return None
    except Exception as exc:  # garbage, a pickle with code in it, a truncated file…
        raise _invalid(path, f"{type(exc).__name__} while reading it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _invalid(path, "no Seedlab resume format marker")
    fields = TrainState.__dataclass_fields__
    missing = [
        name
        for name, spec in fields.items()
        if name not in payload and spec.default is MISSING and spec.default_factory is MISSING
    ]
    if missing or not isinstance(payload["epoch"], int) or payload["epoch"] < 1:
        raise _invalid(path, f"missing or wrong fields: {', '.join(missing) or 'epoch'}")
    return TrainState(**{k: v for k, v in payload.items() if k in fields})


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a resume from `path` continues after, read from the checkpoint itself (what
    the run will load, not the side file), or None when there is none. Raises
    InvalidCheckpoint for a file that is not a valid one."""
    state = load_train_state(path, mmap=True)  # mapped: reads the epoch, not the weights
    return None if state is None else state.epoch


def saved_epoch(path: Path) -> int | None:
    """The epoch a resume checkpoint was taken at, or None when there is none (or no valid one):
    read from the side file, cheaply, for pages and the engine's requeue decision."""
    if not path.is_file():
        return None
    try:
        side = json.loads(_epoch_file(path).read_text())
        if {k: side[k] for k in ("size", "mtime_ns")} == _identity(path.stat()):
            return int(side["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:  # no side file, or one left from the previous checkpoint
        return checkpoint_epoch(path)
    except InvalidCheckpoint:
        return None
