"""From a dataset frame to tensors, and from a trained model to a report and a checkpoint.

No database here: the runner glues these to the DB, tests and notebooks call them directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine.core.atomic import atomic_path
from engine.core.catalog import model_family_for
from engine.core.config import RunConfig
from engine.core.errors import ConfigError, DatasetError
from engine.core.settings import Settings
from engine.data.stored import StoredDataset
from engine.data.versions import load_version_table
from engine.ml.device import DeviceChoice
from engine.ml.evaluate import classification_report, prediction_table, regression_report
from engine.ml.inputs import InputSpec
from engine.ml.prep.tabular import TabularPreprocessor, TargetEncoder
from engine.ml.prepare_images import prepare_images
from engine.ml.prepare_text import prepare_stored_text
from engine.ml.prepared import PreparedData, Preparer, row_ids_of, split_for_run
from engine.ml.train import TrainData, predict


def prepare_dataset(
    settings: Settings, dataset: StoredDataset, config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    """Load a stored dataset of any kind and turn it into device tensors for this config."""
    try:
        model_family_for(config.model, dataset.kind)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    preparer = PREPARERS.get(dataset.kind)
    if preparer is None:
        raise DatasetError(f"Datasets of kind {dataset.kind!r} cannot be trained yet.")
    return preparer(settings, dataset, config, choice)


def _prepare_stored_table(
    settings: Settings, dataset: StoredDataset, config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    # A version's rows: its base file with its relabels and exclusions (none: the file as is).
    return prepare_tabular(load_version_table(settings, dataset), dataset.schema, config, choice)


def prepare_tabular(
    frame: pd.DataFrame, schema: dict[str, Any], config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    """Split by seed, fit preprocessing on the training rows only, move tensors to the device."""
    target_col = schema["target"]
    if target_col not in frame.columns:
        raise DatasetError(
            f"The target column {target_col!r} is missing from the dataset's data file."
        )
    task, classes, splits = split_for_run(frame, schema, config)
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
        spec=InputSpec(kind="tabular", shape=(int(x_train.shape[1]),)),
        target_std=encoder.std,
    )
    test_frame = splits.test

    def describe_test(positions: Sequence[int]) -> list[dict[str, Any]]:
        rows = test_frame.iloc[list(positions)].drop(columns=[target_col])
        return [
            {k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in rows.astype(object).to_dict(orient="records")
        ]

    return PreparedData(
        train_data,
        x_test,
        y_test,
        pre,
        encoder,
        split_sizes={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        stratified=bool(splits.stratified),
        task=task,
        describe_test=describe_test,
        test_row_ids=row_ids_of(test_frame),
        feature_names=pre.feature_names,
    )


# dataset kind -> how to turn it into tensors
PREPARERS: dict[str, Preparer] = {
    "tabular": _prepare_stored_table,
    "text": prepare_stored_text,
    "image": prepare_images,
}


def evaluate_on_test(
    model: nn.Module,
    data: PreparedData,
    choice: DeviceChoice,
    predictions_path: Path | None = None,
) -> dict[str, Any]:
    """The test report; with `predictions_path`, every test prediction by row id is also written
    there (Parquet), for the Datasets page's filters by a run's predictions."""
    out = predict(model, data.x_test, choice).cpu()
    if data.task == "classification":
        outputs = torch.softmax(out, dim=1).numpy().astype(np.float64)
        report = classification_report(
            data.y_test, outputs, data.target.classes, data.describe_test
        )
    else:
        outputs = data.target.decode_regression(out.view(-1).numpy().astype(np.float64))
        report = regression_report(data.y_test, outputs, data.describe_test)
    if len(data.test_row_ids) == len(data.y_test):
        # Row ids in the worst mistakes: "fix this label" on the Run page names the row.
        for mistake in report["worst_mistakes"]:
            mistake["row_id"] = data.test_row_ids[mistake["position"]]
        if predictions_path is not None:
            table = prediction_table(data.y_test, outputs, data.target.classes, data.test_row_ids)
            with atomic_path(predictions_path) as tmp:
                table.to_parquet(tmp, index=False)
    report["split_sizes"] = dict(data.split_sizes)
    report["stratified_split"] = data.stratified
    report["input"] = data.train_data.spec.to_dict()
    report["input"].pop("encoder", None)  # a pretrained encoder's whole config.json: not a fact
    describe = getattr(model, "describe_training", None)
    if callable(describe):  # a pretrained encoder: which layers trained (the Run page says)
        report["trained_layers"] = describe()
    if data.train_data.spec.kind == "tabular":
        report["n_features"] = int(data.train_data.spec.shape[0])
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
    spec = data.train_data.spec
    payload = {
        "format": "seedlab-v2",
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.model_dump(mode="json"),
        "model_family": model_family_for(config.model, spec.kind),
        "task": data.task,
        "epoch": epoch,
        "input": spec.to_dict(),
        "n_inputs": int(spec.shape[0]) if spec.kind == "tabular" else 0,
        "n_outputs": int(data.train_data.n_outputs),
        "feature_names": data.feature_names,
        "preprocessor": data.preprocessor.to_dict(),
        "target": data.target.to_dict(),
        "target_column": schema["target"],
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return file_digest(path)


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()
