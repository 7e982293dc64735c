"""The training loop. It knows nothing of the database: it gets a config, tensors on a device
and a reporter, and reads top to bottom.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import torch
from torch import nn

from engine.core.catalog import HIGHER_IS_BETTER, monitor_error
from engine.core.config import RunConfig
from engine.core.epochs import EPOCH_KEY
from engine.core.errors import ConfigError, TrainingError
from engine.ml.checkpoints import (
    TrainState,
    capture_state,
    changing_state,
    load_changing_state,
    restore_state,
)
from engine.ml.ddp import SINGLE, DataParallel
from engine.ml.device import DeviceChoice
from engine.ml.distill_loss import DistillationLoss, teacher_outputs
from engine.ml.inputs import InputSpec
from engine.ml.models.build import build_model

EVAL_BATCH = 4096


class BatchStream(Protocol):
    """Inputs read batch by batch instead of held as one tensor (engine/ml/prep/image_stream.py)."""

    def __len__(self) -> int: ...

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]: ...

    def in_order(self) -> Iterator[torch.Tensor]: ...


Inputs = torch.Tensor | BatchStream


class Reporter(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def should_stop(self) -> bool: ...


@dataclass
class TrainData:
    """Tensors already on the training device; y is int64 classes or float32 scaled values.

    x_train and x_val may instead be streams read batch by batch (image sets too big for memory);
    the labels are always tensors on the device.
    """

    x_train: Inputs
    y_train: torch.Tensor
    x_val: Inputs
    y_val: torch.Tensor
    task: str
    n_outputs: int
    spec: InputSpec
    target_std: float = 1.0  # regression: RMSE is reported in the target's own units
    # Applied to each training batch on the device (image augmentation); never to validation.
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    # A trained model on the same device whose outputs this run also learns from (distillation).
    teacher: nn.Module | None = None


@dataclass
class TrainResult:
    model: nn.Module
    epochs_completed: int
    cancelled: bool
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0  # the epoch whose weights the model holds when restore_best_weights
    stopped_early: bool = False  # early stopping ended it before config.epochs
    steps_completed: int = 0  # optimizer steps at the end of the last completed epoch


class ListReporter:
    """Keeps metrics in memory: for notebooks and tests."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.points.append((step, dict(metrics)))

    def should_stop(self) -> bool:
        return False


def make_optimizer(config: RunConfig, params) -> torch.optim.Optimizer:  # noqa: ANN001
    """The configured optimizer with its fused kernel (one kernel per step for all parameters
    instead of a few per tensor): on a small model the per-tensor launches dominate the step,
    and fused AdamW trains a small MLP ~25 % faster on CPU (bench/bench_engine.py)."""
    params = list(params)
    if config.optimizer in ("adamw", "adam"):
        cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        kwargs = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    else:
        cls = torch.optim.SGD
        kwargs = {
            "lr": config.learning_rate,
            "momentum": config.momentum,
            "weight_decay": config.weight_decay,
        }
    try:
        return cls(params, **kwargs, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype with no fused kernel
        return cls(params, **kwargs)


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer):  # noqa: ANN201
    """The per-epoch schedule, after `warmup_epochs` of linear warm-up when asked for."""
    sched = torch.optim.lr_scheduler
    warmup = min(config.warmup_epochs, config.epochs - 1)
    main = None
    if config.lr_schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs - warmup))
    elif config.lr_schedule == "step":
        main = sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if warmup <= 0:
        return main
    ramp = sched.LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=warmup)
    if main is None:
        return ramp
    return sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def check_monitor(config: RunConfig, task: str) -> None:
    problem = monitor_error(config.monitor, task)
    if problem:
        raise ConfigError(problem)


def _class_counts(data: TrainData) -> torch.Tensor:
    return torch.bincount(data.y_train, minlength=data.n_outputs).float()


def _class_weights(data: TrainData) -> torch.Tensor:
    """Inverse-frequency weights, scaled so a balanced dataset gets all ones (sklearn's
    "balanced"); a class missing from the training split gets weight 0."""
    counts = _class_counts(data)
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


@torch.no_grad()
def predict(model: nn.Module, x: Inputs, choice: DeviceChoice | None = None) -> torch.Tensor:
    """Model outputs (logits or scaled values) for x, in batches, as float32."""
    model.eval()
    outputs = []
    if isinstance(x, torch.Tensor):
        batches: Iterator[torch.Tensor] = (
            x[start : start + EVAL_BATCH] for start in range(0, len(x), EVAL_BATCH)
        )
    else:
        batches = x.in_order()
    for batch in batches:
        if choice is not None and choice.autocast_dtype is not None:
            with torch.autocast(choice.device.type, dtype=choice.autocast_dtype):
                outputs.append(model(batch).float())
        else:
            outputs.append(model(batch).float())
    return torch.cat(outputs) if outputs else torch.empty(0)


def _loss_fn(task: str) -> nn.Module:
    """The plain loss: what val_loss reports, comparable across runs whatever their options."""
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def _training_loss_fn(config: RunConfig, data: TrainData) -> nn.Module:
    if data.task != "classification":
        return nn.MSELoss()
    weight = _class_weights(data) if config.imbalance == "class_weights" else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)


def _targets_for_loss(task: str, y: torch.Tensor) -> torch.Tensor:
    return y if task == "classification" else y.view(-1, 1)


def _validate(model: nn.Module, data: TrainData, choice: DeviceChoice) -> dict[str, float]:
    out = predict(model, data.x_val, choice)
    loss = _loss_fn(data.task)(out, _targets_for_loss(data.task, data.y_val)).item()
    if data.task == "classification":
        return {
            "val_loss": loss,
            **classification_scores(data.y_val, out.argmax(dim=1), data.n_outputs),
        }
    mae = (out.view(-1) - data.y_val).abs().mean().item()
    return {
        "val_loss": loss,
        "val_rmse": math.sqrt(loss) * data.target_std,
        "val_mae": mae * data.target_std,
    }


def classification_scores(
    y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int
) -> dict[str, float]:
    """Accuracy, macro F1 and balanced accuracy from one confusion matrix on the device.

    The same definitions as scikit-learn's (a test checks they agree), at a fraction of the
    per-epoch cost: sklearn's input validation takes milliseconds, more than an epoch of a
    small table. Classes absent from the split are left out of the averages, as sklearn does
    for balanced accuracy; macro F1 counts every class seen in either labels or predictions.
    """
    cm = torch.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    cm = cm.view(n_classes, n_classes).double()
    tp, support, predicted = cm.diag(), cm.sum(dim=1), cm.sum(dim=0)
    seen = (support + predicted) > 0
    f1 = torch.where(seen, 2 * tp / (support + predicted).clamp(min=1), 0.0)
    present = support > 0
    recall = tp[present] / support[present]
    total = cm.sum().clamp(min=1)
    return {
        "val_accuracy": (tp.sum() / total).item(),
        "val_f1_macro": (f1[seen].mean() if seen.any() else f1.sum()).item(),
        "val_balanced_accuracy": (recall.mean() if present.any() else tp.sum()).item(),
    }


def _batch_order(config: RunConfig, data: TrainData, generator: torch.Generator) -> torch.Tensor:
    """Indices of one epoch: a permutation, or with weighted sampling a draw (with replacement)
    in which every class is equally likely."""
    n = len(data.x_train)
    if config.imbalance == "weighted_sampling" and data.task == "classification":
        per_row = _class_weights(data)[data.y_train]
        return torch.multinomial(per_row, n, replacement=True, generator=generator)
    return torch.randperm(n, device=data.y_train.device, generator=generator)


def _check_finite(loss: float, epoch: int, config: RunConfig) -> None:
    if not math.isfinite(loss):
        raise TrainingError(
            f"The training loss became {loss} in epoch {epoch}. The learning rate "
            f"({config.learning_rate:g}) is probably too high: try {config.learning_rate / 10:g}."
        )


def _compile_error(exc: Exception) -> TrainingError:
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return TrainingError(
        f"torch.compile could not compile this model ({type(exc).__name__}: {detail}). "
        "Launch the run again with compile off (the model trains the same, uncompiled)."
    )


def _train_batches(
    x: Inputs, order: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(positions, inputs) of each batch of an epoch in `order`."""
    starts = range(0, len(order), batch_size)
    if isinstance(x, torch.Tensor):
        # Small datasets live on the device; a batch is an index slice, no DataLoader.
        for start in starts:
            idx = order[start : start + batch_size]
            yield idx, x[idx]
    else:
        for start, xb in zip(starts, x.batches(order, batch_size), strict=True):
            yield order[start : start + batch_size], xb


def _epoch_mean(batch_losses: list[torch.Tensor], n: int, batch_size: int) -> float:
    """The per-sample mean training loss of an epoch from its per-batch means (every batch is
    full but the last, which holds the remainder)."""
    if not batch_losses:
        return 0.0
    losses = torch.stack(batch_losses).float()
    last = n - batch_size * (len(batch_losses) - 1)
    return ((losses[:-1].sum() * batch_size + losses[-1] * last) / n).item()


# Within an epoch the ranks of a data-parallel run agree on stopping every this many batches
# (a broadcast each time); one process asks its reporter every batch (a clock read).
AGREE_EVERY = 50


def _stop_requested(reporter: Reporter, parallel: DataParallel, batch: int) -> bool:
    wanted = reporter.should_stop()  # rank 0's reporter flushes and beats here, when due
    if not parallel.active:
        return wanted
    return batch % AGREE_EVERY == AGREE_EVERY - 1 and parallel.agree(wanted)


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Optimizer steps in an epoch of `rows` rows (the last batch holds the remainder)."""
    return max(1, math.ceil(rows / max(1, batch_size)))


class LossWindow:
    """The training loss between two reported points: the batches' mean losses stay on the
    device and are summed only when a point is due (one device sync per point)."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.sizes: list[int] = []

    @property
    def rows(self) -> int:
        return sum(self.sizes)

    def add(self, loss: torch.Tensor, rows: int) -> None:
        self.losses.append(loss)
        self.sizes.append(rows)

    def take(self, parallel: DataParallel) -> float:
        """The per-row mean since the last take (over every rank), and start a new window."""
        losses = torch.stack(self.losses).float()
        sizes = torch.tensor(self.sizes, dtype=losses.dtype, device=losses.device)
        rows = self.rows
        mean = parallel.all_mean((losses * sizes).sum() / max(1, rows), weight=rows)
        self.losses, self.sizes = [], []
        return mean


def _epoch_shape(
    parallel: DataParallel, n: int, batch_size: int, device: torch.device
) -> tuple[int, int]:
    """(rows, rows per batch) of this process's share of an epoch of `n` rows."""
    order, rows_per_batch = parallel.share_epoch(torch.arange(n, device=device), batch_size)
    return len(order), rows_per_batch


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
    parallel: DataParallel = SINGLE,
    loss_points_per_epoch: int = 1,
) -> TrainResult:
    """Train for config.epochs (or until the reporter says stop); report per-epoch metrics.

    Every point is reported at its optimizer step (engine/core/epochs.py), with the `epoch`
    metric beside it. With `loss_points_per_epoch` > 1 the training loss is also reported that
    many times per epoch (every few optimizer steps, and at the run's very first step), so even a
    short run draws a curve while it trains; each `train_loss` point is then the mean over the
    steps since the previous one. The history (and the checkpoint) keeps the epoch means.

    With `resume`, continue after `resume.epoch` exactly as an uninterrupted run would.
    With `parallel` (one of several DDP processes, engine/ml/ddp.py) this process trains on its
    share of every batch; every rank returns the same model and history.
    """
    check_monitor(config, data.task)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=data.y_train.device).manual_seed(config.seed)

    model = build_model(config, data.spec, data.n_outputs).to(choice.device)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    loss_fn = _training_loss_fn(config, data).to(choice.device)
    if data.teacher is not None:  # knowledge distillation (engine/ml/distill.py)
        loss_fn = DistillationLoss(
            loss_fn, data.task, config.distill_temperature, config.distill_alpha
        )
    use_amp = choice.autocast_dtype is not None
    scaler = torch.amp.GradScaler(enabled=choice.autocast_dtype == torch.float16)

    n = len(data.x_train)
    batch_size = min(config.batch_size, n)
    parallel.check_batch(batch_size)
    y_for_loss = _targets_for_loss(data.task, data.y_train)
    params = [p for p in model.parameters() if p.requires_grad]
    clip = config.grad_clip_norm > 0
    history: list[dict[str, float]] = []
    sign = -1.0 if HIGHER_IS_BETTER[config.monitor] else 1.0  # compare as "lower is better"
    best_score, best_state, best_epoch, stale_epochs = math.inf, None, 0, 0
    # --- resume (engine/ml/checkpoints.py)
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
        best_score, best_epoch, stale_epochs = (
            resume.best_score,
            resume.best_epoch,
            resume.stale_epochs,
        )
        best_state = {k: v.to(choice.device) for k, v in (resume.best_model or {}).items()} or None
        first_epoch = resume.epoch + 1
    # ---
    # The compiled module (and the DDP wrapper) share the model's parameters; state dicts and
    # checkpoints keep using `model` itself, so their keys never depend on either. DDP wraps the
    # model after the resume so every rank starts from the restored weights.
    wrapped = parallel.wrap(model)
    forward = torch.compile(wrapped) if config.compile else wrapped
    # Validation runs on every rank alike, outside DDP (whose forward may start collectives).
    evaluate = model if parallel.active else forward
    window = LossWindow()
    # The same number of steps every epoch (and on every rank), so a resumed run's steps
    # continue where its checkpointed epoch ended.
    per_epoch = steps_per_epoch(*_epoch_shape(parallel, n, batch_size, data.y_train.device))
    every = max(1, per_epoch // max(1, loss_points_per_epoch))
    steps_done = (first_epoch - 1) * per_epoch
    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order, rows_per_batch = parallel.share_epoch(
            _batch_order(config, data, generator), batch_size
        )
        first_step = (epoch - 1) * per_epoch
        augment_with = parallel.augment_generator(generator, config.seed, epoch)
        # Each batch's mean loss, kept on the device: summed once per epoch, so a batch costs
        # no extra kernel and no device sync for the bookkeeping.
        batch_losses: list[torch.Tensor] = []
        for batch, (idx, xb) in enumerate(_train_batches(data.x_train, order, rows_per_batch)):
            yb = y_for_loss[idx]
            if data.augment is not None:
                xb = data.augment(xb, augment_with)
            if data.teacher is not None:  # distillation: the labels and the teacher's outputs
                yb = (yb, teacher_outputs(data.teacher, xb))
            optimizer.zero_grad(set_to_none=True)
            try:
                if use_amp:
                    with torch.autocast(choice.device.type, dtype=choice.autocast_dtype):
                        loss = loss_fn(forward(xb).float(), yb)
                else:
                    loss = loss_fn(forward(xb), yb)
            except Exception as exc:
                if config.compile and batch == 0:
                    raise _compile_error(exc) from exc
                raise
            if scaler.is_enabled():  # fp16 only: bf16 and fp32 need no loss scaling
                scaler.scale(loss).backward()
                if clip:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                    nn.utils.clip_grad_norm_(params, config.grad_clip_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(params, config.grad_clip_norm)
                optimizer.step()
            batch_losses.append(loss.detach())
            window.add(loss.detach(), len(idx))
            step = first_step + batch + 1
            mid_epoch = batch + 1 < per_epoch
            if mid_epoch and (
                (batch + 1) % every == 0 or (step == 1 and loss_points_per_epoch > 1)
            ):
                reporter.log(
                    step,
                    {"train_loss": window.take(parallel), EPOCH_KEY: step / per_epoch},
                )
            # Check every 100 batches too (one device sync), so a diverged run on a large
            # dataset fails in seconds instead of at the end of a long epoch.
            # (every rank takes the same decision: all raise or none).
            if batch % 100 == 99:
                recent = torch.stack(batch_losses[-100:]).sum()
                _check_finite(parallel.all_mean(recent), epoch, config)
            if _stop_requested(reporter, parallel, batch):
                return TrainResult(
                    model, epoch - 1, cancelled=True, history=history, steps_completed=first_step
                )

        train_loss = parallel.all_mean(
            _epoch_mean(batch_losses, len(order), rows_per_batch), weight=len(order)
        )
        _check_finite(train_loss, epoch, config)
        # The epoch's last point: the loss since the previous point (the whole epoch when
        # there is one point per epoch), so the curve has no jump at an epoch's end.
        recent = window.take(parallel) if window.rows else train_loss
        steps_done = epoch * per_epoch
        metrics = {
            "train_loss": train_loss,
            **_validate(evaluate, data, choice),
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": time.perf_counter() - started,
        }
        history.append(metrics)
        reporter.log(steps_done, {**metrics, "train_loss": recent, EPOCH_KEY: float(epoch)})
        score = sign * metrics[config.monitor]
        if score < best_score:
            best_score, best_epoch, stale_epochs = score, epoch, 0
            if config.restore_best_weights:
                best_state = {k: v.detach().clone() for k, v in changing_state(model).items()}
        else:
            stale_epochs += 1
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
                    best_score=best_score,
                    best_epoch=best_epoch,
                    stale_epochs=stale_epochs,
                    best_model=best_state,
                ),
            )
        if parallel.agree(reporter.should_stop()):
            return TrainResult(
                model, epoch, cancelled=True, history=history, steps_completed=steps_done
            )
        patience = config.early_stopping_patience
        if parallel.agree(bool(patience) and stale_epochs >= patience):
            break
    if best_state is not None:
        load_changing_state(model, best_state)
    return TrainResult(
        model,
        len(history),
        cancelled=False,
        history=history,
        best_epoch=best_epoch if config.restore_best_weights else 0,
        stopped_early=len(history) < config.epochs,
        steps_completed=steps_done,
    )
