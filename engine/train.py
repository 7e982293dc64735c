"""The training loop. It knows nothing of the database: it gets a config, tensors on a device
and a reporter, and reads top to bottom.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import torch
from torch import nn

from engine.checkpoints import TrainState, capture_state, restore_state
from engine.config import RunConfig
from engine.device import DeviceChoice
from engine.errors import TrainingError
from engine.models import build_model

EVAL_BATCH = 4096


class Reporter(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def should_stop(self) -> bool: ...


@dataclass
class TrainData:
    """Tensors already on the training device; y is int64 classes or float32 scaled values."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    task: str
    n_outputs: int
    target_std: float = 1.0  # regression: RMSE is reported in the target's own units


@dataclass
class TrainResult:
    model: nn.Module
    epochs_completed: int
    cancelled: bool
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0  # the epoch whose weights the model holds when restore_best_weights


class ListReporter:
    """Keeps metrics in memory: for notebooks and tests."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.points.append((step, dict(metrics)))

    def should_stop(self) -> bool:
        return False


def make_optimizer(config: RunConfig, params) -> torch.optim.Optimizer:  # noqa: ANN001
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
    )


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer):  # noqa: ANN201
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.step_size, gamma=config.gamma
        )
    return None


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, choice: DeviceChoice | None = None) -> torch.Tensor:
    """Model outputs (logits or scaled values) for x, in batches, as float32."""
    model.eval()
    outputs = []
    for start in range(0, len(x), EVAL_BATCH):
        batch = x[start : start + EVAL_BATCH]
        if choice is not None and choice.autocast_dtype is not None:
            with torch.autocast(choice.device.type, dtype=choice.autocast_dtype):
                outputs.append(model(batch).float())
        else:
            outputs.append(model(batch).float())
    return torch.cat(outputs) if outputs else torch.empty(0)


def _loss_fn(task: str) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def _targets_for_loss(task: str, y: torch.Tensor) -> torch.Tensor:
    return y if task == "classification" else y.view(-1, 1)


def _validate(model: nn.Module, data: TrainData, choice: DeviceChoice) -> dict[str, float]:
    out = predict(model, data.x_val, choice)
    loss = _loss_fn(data.task)(out, _targets_for_loss(data.task, data.y_val)).item()
    if data.task == "classification":
        accuracy = (out.argmax(dim=1) == data.y_val).float().mean().item()
        return {"val_loss": loss, "val_accuracy": accuracy}
    return {"val_loss": loss, "val_rmse": math.sqrt(loss) * data.target_std}


def _check_finite(loss: float, epoch: int, config: RunConfig) -> None:
    if not math.isfinite(loss):
        raise TrainingError(
            f"The training loss became {loss} in epoch {epoch}. The learning rate "
            f"({config.learning_rate:g}) is probably too high: try {config.learning_rate / 10:g}."
        )


# Called after each epoch's metrics were reported, with a function that captures the loop's state
# (called only when a checkpoint is due, so skipping one costs nothing).
EpochEndHook = Callable[[int, Callable[[], TrainState]], None]


def train(
    config: RunConfig,
    data: TrainData,
    reporter: Reporter,
    choice: DeviceChoice,
    *,
    resume: TrainState | None = None,
    on_epoch_end: EpochEndHook | None = None,
) -> TrainResult:
    """Train for config.epochs (or until the reporter says stop); report per-epoch metrics.

    With `resume`, continue after `resume.epoch` exactly as an uninterrupted run would.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=data.x_train.device).manual_seed(config.seed)

    model = build_model(config, data.x_train.shape[1], data.n_outputs).to(choice.device)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    loss_fn = _loss_fn(data.task)
    use_amp = choice.autocast_dtype is not None
    scaler = torch.amp.GradScaler(enabled=choice.autocast_dtype == torch.float16)

    n = len(data.x_train)
    batch_size = min(config.batch_size, n)
    history: list[dict[str, float]] = []
    best_val_loss, best_state, best_epoch = math.inf, None, 0
    # --- resume (engine/checkpoints.py)
    first_epoch = 1
    if resume is not None:
        restore_state(
            resume,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            generator=generator,
        )
        history = [dict(h) for h in resume.history]
        best_val_loss, best_epoch = resume.best_val_loss, resume.best_epoch
        best_state = {k: v.to(choice.device) for k, v in (resume.best_model or {}).items()} or None
        first_epoch = resume.epoch + 1
    # ---
    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=data.x_train.device, generator=generator)
        total_loss = torch.zeros((), device=choice.device)
        for start in range(0, n, batch_size):
            # Small datasets live on the device; a batch is an index slice, no DataLoader.
            idx = order[start : start + batch_size]
            xb, yb = data.x_train[idx], _targets_for_loss(data.task, data.y_train[idx])
            with torch.autocast(choice.device.type, dtype=choice.autocast_dtype, enabled=use_amp):
                loss = loss_fn(model(xb).float(), yb)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total_loss += loss.detach() * len(idx)
            # Check every 100 batches too (one device sync), so a diverged run on a large
            # dataset fails in seconds instead of at the end of a long epoch.
            if (start // batch_size) % 100 == 99:
                _check_finite(total_loss.item(), epoch, config)
            if reporter.should_stop():
                return TrainResult(model, epoch - 1, cancelled=True, history=history)

        train_loss = total_loss.item() / n
        _check_finite(train_loss, epoch, config)
        metrics = {
            "train_loss": train_loss,
            **_validate(model, data, choice),
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": time.perf_counter() - started,
        }
        history.append(metrics)
        reporter.log(epoch, metrics)
        if config.restore_best_weights and metrics["val_loss"] < best_val_loss:
            best_val_loss, best_epoch = metrics["val_loss"], epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(
                epoch,
                partial(
                    capture_state,
                    epoch=epoch,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    scaler=scaler,
                    generator=generator,
                    history=history,
                    best_val_loss=best_val_loss,
                    best_epoch=best_epoch,
                    best_model=best_state,
                ),
            )
        if reporter.should_stop():
            return TrainResult(model, epoch, cancelled=True, history=history)
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(
        model, config.epochs, cancelled=False, history=history, best_epoch=best_epoch
    )
