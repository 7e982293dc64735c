"""Smaller, faster variants of a completed run's model, each measured against the original.

- quantize: dynamic int8 (weights stored as int8, activations quantized on the fly) of the
  Linear, LSTM and GRU layers with `torch.ao.quantization.quantize_dynamic`. It is deprecated
  upstream in favour of torchao, but torchao's int8 path runs ~9x slower than float on CPU
  without torch.compile, while torch.ao uses the fbgemm kernels.
- prune: global magnitude (L1) pruning of the Linear/Conv weights to a target sparsity with
  `torch.nn.utils.prune`, then a short fine-tune on the training split with the masks held.
- distill: queues a student run (engine/ml/distill.py); it is measured once it completes.

Results go to runs/<id>/variants/ (engine/deploy/variants.py).
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import Engine
from torch import nn
from torch.nn.utils import prune

from db import runs as run_store
from db.writes import artifacts as artifact_writes
from engine.core.atomic import atomic_path
from engine.core.catalog import HEADLINE_METRIC
from engine.core.config import RunConfig, validate_config
from engine.core.errors import ConfigError
from engine.core.run_files import checkpoint_path, read_report
from engine.core.settings import Settings
from engine.deploy.finished_run import (
    FinishedRun,
    RunNotReady,
    load_finished_run,
    load_model,
)
from engine.deploy.variants import add_variant, read_variants, variants_dir, write_variants
from engine.ml.device import choose_device
from engine.ml.inputs import InputSpec
from engine.ml.models.build import build_model
from engine.ml.pipeline import evaluate_on_test, file_digest
from engine.ml.predictor import Predictor, PredictorError
from engine.ml.train import _train_batches

QUANTIZED_FORMAT = "seedlab-v2-int8"
QUANTIZED_LAYERS = {nn.Linear, nn.LSTM, nn.GRU}
PRUNED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


# ------------------------------------------------------------------ measuring
def latency_ms(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward pass on the CPU, after a warm-up."""
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(3):
            model(x)
        for _ in range(repeats):
            started = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(model: nn.Module, predictor: Predictor, path: Path) -> dict[str, Any]:
    return {
        "size_bytes": path.stat().st_size,
        "latency_b1_ms": round(latency_ms(model, predictor.example_input(1), 30), 4),
        "latency_b64_ms": round(latency_ms(model, predictor.example_input(64), 10), 4),
    }


def _headline(task: str) -> str:
    return HEADLINE_METRIC.get(task, ("test_accuracy", True))[0]


def _test_value(model: nn.Module, finished: FinishedRun) -> float:
    report = evaluate_on_test(model, finished.data, choose_device("cpu"))
    return float(report["metrics"][_headline(finished.data.task)])


def _original(settings: Settings, finished: FinishedRun) -> dict[str, Any]:
    """The original's row, from its checkpoint and its stored test report."""
    run_id = finished.run.id
    metric = _headline(finished.data.task)
    report = read_report(settings, run_id) or {}
    value = (report.get("metrics") or {}).get(metric)
    if value is None:
        value = _test_value(finished.predictor.model, finished)
    row = measure(finished.predictor.model, finished.predictor, checkpoint_path(settings, run_id))
    return {**row, "metric": metric, "value": float(value), "status": "ready"}


def _register(settings: Settings, db: Engine, run_id: int, path: Path) -> None:
    size, digest = file_digest(path)
    relative = path.relative_to(settings.run_dir(run_id))
    artifact_writes.add_artifact(
        db, run_id, kind="variant", path=str(relative), size_bytes=size, sha256=digest
    )


def _save(payload: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


# ------------------------------------------------------------------ quantize
def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; see the module doc
        # A pretrained encoder's LoRA adapters are merged first: int8 layers replace plain ones.
        plain = model.merged() if hasattr(model, "merged") else copy.deepcopy(model)
        return torch.ao.quantization.quantize_dynamic(
            plain.eval(), QUANTIZED_LAYERS, dtype=torch.qint8
        )


def load_variant(path: Path | str) -> Predictor:
    """A variant file as a Predictor (int8 files are rebuilt, then quantized, then loaded)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # our words, never torch's advice to load it with weights_only=False
        raise PredictorError(
            f"{path} is not a valid Seedlab model variant ({type(exc).__name__} while reading "
            "it): it is damaged or was replaced by another file, and was not loaded. Make the "
            "variant again."
        ) from None
    if payload.get("format") != QUANTIZED_FORMAT:
        return Predictor.load(path)
    state = payload["model_state"]
    # The float model from the same config, with fresh weights: quantized ones replace them.
    config = RunConfig.model_validate(payload["config"])
    fresh = build_model(config, InputSpec.from_dict(payload["input"]), int(payload["n_outputs"]))
    shell = Predictor.from_payload({**payload, "model_state": fresh.state_dict()})
    shell.model = quantize_dynamic_int8(shell.model)
    shell.model.load_state_dict(state)
    shell.model.eval()
    return shell


def quantize_run(settings: Settings, db: Engine, run_id: int) -> dict[str, Any]:
    finished = load_finished_run(settings, db, run_id)
    predictor = finished.predictor
    quantized = quantize_dynamic_int8(predictor.model)
    counted = sum(isinstance(m, tuple(QUANTIZED_LAYERS)) for m in predictor.model.modules())
    if not counted:
        raise ConfigError(
            f"The {predictor.model_family} model has no Linear, LSTM or GRU layer that dynamic "
            "int8 quantization applies to."
        )
    path = variants_dir(settings, run_id) / "model-int8.pt"
    payload = {
        **predictor.payload,
        "format": QUANTIZED_FORMAT,
        "model_state": quantized.state_dict(),
        "variant": {"method": "quantize", "scheme": "dynamic int8", "of_run": run_id},
    }
    _save(payload, path)
    loaded = load_variant(path).model  # measure what a user gets back from the file
    row = {
        "name": "int8",
        "method": "quantize",
        "file": str(path.relative_to(settings.run_dir(run_id))),
        "params": {"scheme": "dynamic int8"},
        **measure(loaded, predictor, path),
        "metric": _headline(finished.data.task),
        "value": _test_value(loaded, finished),
        "status": "ready",
        "details": f"dynamic int8 on {counted} Linear/LSTM/GRU layers; convolutions stay float32",
    }
    add_variant(settings, run_id, _original(settings, finished), row)
    _register(settings, db, run_id, path)
    return row


# ------------------------------------------------------------------ prune
def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNED_LAYERS)]


def sparsity(model: nn.Module) -> float:
    """Share of exact zeros in the prunable layers' weights."""
    weights = [getattr(m, name) for m, name in _prunable(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / max(1, total)


def _fine_tune(model: nn.Module, finished: FinishedRun, epochs: int) -> None:
    """A few epochs on the training split at a tenth of the run's learning rate; the pruning
    masks keep the removed weights at zero."""
    config = validate_config(finished.run.config)
    data = finished.data.train_data
    loss_fn = nn.CrossEntropyLoss() if data.task == "classification" else nn.MSELoss()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate / 10
    )
    generator = torch.Generator().manual_seed(config.seed)
    n = len(data.x_train)
    batch = min(config.batch_size, n)
    # A frozen pretrained encoder's cached features describe the unpruned encoder: fine-tune
    # on its token ids instead (engine/ml/prepare_pretrained.py FrozenFeatures).
    x_train = getattr(data.x_train, "ids", data.x_train)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for idx, xb in _train_batches(x_train, order, batch):
            yb = data.y_train[idx]
            if data.task != "classification":
                yb = yb.view(-1, 1)
            loss = loss_fn(model(xb).float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


def prune_run(
    settings: Settings, db: Engine, run_id: int, target: float = 0.5, epochs: int = 2
) -> dict[str, Any]:
    if not 0.0 < target < 1.0:
        raise ConfigError(f"sparsity must be between 0 and 1 (e.g. 0.5); got {target}")
    if not 0 <= epochs <= 100:
        raise ConfigError(f"fine-tune epochs must be between 0 and 100; got {epochs}")
    finished = load_finished_run(settings, db, run_id)
    predictor = finished.predictor
    model = copy.deepcopy(predictor.model)
    targets = _prunable(model)
    if not targets:
        raise ConfigError(f"The {predictor.model_family} model has no Linear or Conv layer.")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=target)
    _fine_tune(model, finished, epochs)
    for module, name in targets:
        prune.remove(module, name)  # make the zeros part of the plain weights
    reached = sparsity(model)
    percent = round(100 * target)
    path = variants_dir(settings, run_id) / f"model-pruned-{percent}.pt"
    payload = {
        **predictor.payload,
        "model_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "variant": {
            "method": "prune",
            "sparsity": reached,
            "fine_tune_epochs": epochs,
            "of_run": run_id,
        },
    }
    _save(payload, path)
    loaded = load_variant(path).model
    row = {
        "name": f"pruned-{percent}%",
        "method": "prune",
        "file": str(path.relative_to(settings.run_dir(run_id))),
        "params": {"target_sparsity": target, "fine_tune_epochs": epochs},
        "sparsity": reached,
        **measure(loaded, predictor, path),
        "metric": _headline(finished.data.task),
        "value": _test_value(loaded, finished),
        "status": "ready",
        "details": f"{reached:.1%} of Linear/Conv weights are zero, fine-tuned {epochs} epochs; "
        "stored dense (same size, same speed on CPU)",
    }
    add_variant(settings, run_id, _original(settings, finished), row)
    _register(settings, db, run_id, path)
    return row


def refresh_students(settings: Settings, db: Engine, run_id: int) -> dict[str, Any]:
    """Measure students that completed since they were queued; note the ones that failed."""
    record = read_variants(settings, run_id)
    pending = [v for v in record["variants"] if v.get("method") == "distill"]
    pending = [v for v in pending if v.get("status") not in ("ready", "failed", "cancelled")]
    if not pending:
        return record
    for entry in pending:
        student = run_store.get_run(db, int(entry["run_id"]))
        if student is None:
            entry["status"], entry["details"] = "failed", "the student run was deleted"
        elif student.status in ("failed", "cancelled"):
            entry["status"] = student.status
            entry["details"] = student.error or f"the student run was {student.status}"
        elif student.status == "completed":
            predictor = load_model(settings, student.id)
            metric = _headline(predictor.task)
            n_params = sum(p.numel() for p in predictor.model.parameters())
            value = ((read_report(settings, student.id) or {}).get("metrics") or {}).get(metric)
            entry.update(
                measure(predictor.model, predictor, checkpoint_path(settings, student.id)),
                metric=metric,
                value=value,
                status="ready",
                details=f"run #{student.id}, {n_params:,} parameters",
            )
        else:
            entry["status"] = student.status
    if record["original"] is None and any(v.get("status") == "ready" for v in pending):
        try:
            record["original"] = _original(settings, load_finished_run(settings, db, run_id))
        except RunNotReady:  # the original's files are gone: its row stays empty, variants show
            pass
    write_variants(settings, run_id, record)
    return record
