"""From a dataset frame to tensors, and from a trained model to a report and a checkpoint.

No database here: the runner glues these to the DB, tests and notebooks call them directly.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine.catalog import effective_task
from engine.config import RunConfig
from engine.device import DeviceChoice
from engine.errors import DatasetError
from engine.evaluate import classification_report, regression_report
from engine.preprocess import Splits, TabularPreprocessor, TargetEncoder, split_frame
from engine.train import TrainData, predict


@dataclass
class PreparedData:
    train_data: TrainData
    x_test: torch.Tensor
    y_test: np.ndarray  # class indices, or raw target values for regression
    preprocessor: TabularPreprocessor
    target: TargetEncoder
    splits: Splits
    task: str


def prepare_tabular(
    frame: pd.DataFrame, schema: dict[str, Any], config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    """Split by seed, fit preprocessing on the training rows only, move tensors to the device."""
    target_col = schema["target"]
    if target_col not in frame.columns:
        raise DatasetError(
            f"The target column {target_col!r} is missing from the dataset's data file."
        )
    task = effective_task(config.task, schema["task"])
    classes = schema.get("classes")
    if task == "classification" and not classes:
        raise DatasetError(
            f"The target {target_col!r} is numeric with many distinct values; "
            "use task=regression (or auto)."
        )
    splits = split_frame(
        frame,
        target=target_col,
        task=task,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    pre = TabularPreprocessor.fit(splits.train, schema, config.max_categories)
    encoder = TargetEncoder.fit(splits.train[target_col], task, classes)

    def tensors(part: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(pre.transform(part)).to(choice.device)
        y = torch.from_numpy(encoder.encode(part[target_col])).to(choice.device)
        return x, y

    x_train, y_train = tensors(splits.train)
    x_val, y_val = tensors(splits.val)
    x_test = torch.from_numpy(pre.transform(splits.test)).to(choice.device)
    if task == "classification":
        y_test = encoder.encode(splits.test[target_col])
    else:
        y_test = splits.test[target_col].to_numpy(dtype=np.float64)
    train_data = TrainData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        task=task,
        n_outputs=len(classes) if task == "classification" else 1,
        target_std=encoder.std,
    )
    return PreparedData(train_data, x_test, y_test, pre, encoder, splits, task)


def evaluate_on_test(model: nn.Module, data: PreparedData, choice: DeviceChoice) -> dict[str, Any]:
    out = predict(model, data.x_test, choice).cpu()
    if data.task == "classification":
        probs = torch.softmax(out, dim=1).numpy().astype(np.float64)
        report = classification_report(data.y_test, probs, data.target.classes)
    else:
        y_pred = data.target.decode_regression(out.view(-1).numpy().astype(np.float64))
        report = regression_report(data.y_test, y_pred)
    report["split_sizes"] = {
        "train": len(data.splits.train),
        "val": len(data.splits.val),
        "test": len(data.splits.test),
    }
    report["stratified_split"] = data.splits.stratified
    report["n_features"] = int(data.train_data.x_train.shape[1])
    return report


def save_checkpoint(
    path: Path,
    model: nn.Module,
    config: RunConfig,
    data: PreparedData,
    *,
    epoch: int,
    schema: dict[str, Any],
) -> tuple[int, str]:
    """Write atomically (temp file, then rename); loadable with torch.load(weights_only=True).

    Returns (bytes, sha256).
    """
    payload = {
        "format": "seedlab-tabular-v1",
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.model_dump(mode="json"),
        "task": data.task,
        "epoch": epoch,
        "n_inputs": int(data.train_data.x_train.shape[1]),
        "n_outputs": int(data.train_data.n_outputs),
        "feature_names": data.preprocessor.feature_names,
        "preprocessor": data.preprocessor.to_dict(),
        "target": data.target.to_dict(),
        "target_column": schema["target"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return file_digest(path)


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()
