"""The training loop and pipeline in-process (no DB): real, small training on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from db import datasets as dataset_store
from engine.config import validate_config
from engine.datasets import load_frame
from engine.device import choose_device
from engine.errors import ConfigError, TrainingError
from engine.pipeline import evaluate_on_test, prepare_tabular, save_checkpoint
from engine.settings import Settings
from engine.train import ListReporter, train

CPU = choose_device("cpu")


def _prepared(db, name: str, **values):
    settings = Settings.from_env()
    record = dataset_store.get_dataset_by_name(db, name)
    config = validate_config(values)
    return record, config, prepare_tabular(load_frame(settings, record), record.schema, config, CPU)


def test_iris_reaches_090_test_accuracy(db, demo_datasets):
    _, config, data = _prepared(db, "iris")
    reporter = ListReporter()
    result = train(config, data.train_data, reporter, CPU)
    report = evaluate_on_test(result.model, data, CPU)
    assert report["metrics"]["test_accuracy"] >= 0.9
    assert len(reporter.points) == config.epochs
    first, last = reporter.points[0][1], reporter.points[-1][1]
    assert last["train_loss"] < first["train_loss"]
    assert set(first) >= {"train_loss", "val_loss", "val_accuracy", "lr"}
    assert report["split_sizes"]["test"] == 22 and report["stratified_split"]
    assert len(report["confusion_matrix"]) == 3


def test_regression_reports_rmse_in_target_units(db, demo_datasets):
    _, config, data = _prepared(db, "diabetes", epochs=15)
    reporter = ListReporter()
    result = train(config, data.train_data, reporter, CPU)
    report = evaluate_on_test(result.model, data, CPU)
    target_std = data.target.std
    assert 20 < report["metrics"]["test_rmse"] < 2 * target_std  # in the target's own units
    assert "val_rmse" in reporter.points[-1][1]
    assert math.isfinite(report["metrics"]["test_r2"])


def test_preprocessing_is_fitted_on_train_only(db, demo_datasets):
    _, _, data = _prepared(db, "wine")
    scaled = data.train_data.x_train
    assert torch.allclose(scaled.mean(dim=0), torch.zeros(scaled.shape[1]), atol=1e-4)
    assert not torch.allclose(data.x_test.mean(dim=0), torch.zeros(scaled.shape[1]), atol=1e-4)


def test_same_seed_same_result(db, demo_datasets):
    runs = []
    for _ in range(2):
        _, config, data = _prepared(db, "iris", epochs=3, seed=7)
        reporter = ListReporter()
        train(config, data.train_data, reporter, CPU)
        runs.append([p[1]["train_loss"] for p in reporter.points])
    assert runs[0] == runs[1]


def test_exploding_loss_fails_with_advice(db, demo_datasets):
    _, config, data = _prepared(
        db,
        "diabetes",
        optimizer="sgd",
        learning_rate=10,
        momentum=0.99,
        epochs=20,
        lr_schedule="none",
        task="regression",
    )
    with pytest.raises(TrainingError, match="learning rate .* too high: try 1"):
        train(config, data.train_data, ListReporter(), CPU)


def test_stop_request_ends_training(db, demo_datasets):
    class StopAfterFirstBatch(ListReporter):
        def should_stop(self) -> bool:
            return True

    _, config, data = _prepared(db, "iris")
    result = train(config, data.train_data, StopAfterFirstBatch(), CPU)
    assert result.cancelled and result.epochs_completed == 0


def test_checkpoint_loads_with_weights_only(db, demo_datasets, tmp_path):
    record, config, data = _prepared(db, "iris", epochs=2)
    result = train(config, data.train_data, ListReporter(), CPU)
    size, digest = save_checkpoint(
        tmp_path / "model.pt", result.model, config, data, epoch=2, schema=record.schema
    )
    assert size > 0 and len(digest) == 64
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["target"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert payload["n_inputs"] == 4 and payload["preprocessor"]["numeric"][0]["name"]


def test_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        choose_device("cuda")
    assert choose_device("auto").device.type == "cpu"
