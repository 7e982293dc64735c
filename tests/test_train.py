"""The training loop and pipeline in-process (no DB): real, small training on CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from db import datasets as dataset_store
from engine.core.config import validate_config
from engine.core.errors import ConfigError, TrainingError
from engine.core.settings import Settings
from engine.data.stored import load_frame
from engine.ml.device import choose_device
from engine.ml.pipeline import evaluate_on_test, prepare_tabular, save_checkpoint
from engine.ml.train import ListReporter, train

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


def test_training_loss_points_within_each_epoch_at_optimizer_steps(db, demo_datasets):
    """A short run draws a line while it trains: training-loss points every few optimizer steps
    (the first at step 1), each at its step with its fractional epoch; every epoch ends with
    all its metrics at the epoch's last step, epoch = k; the history keeps the epoch means."""
    _, config, data = _prepared(db, "iris", epochs=3, batch_size=8)
    per_epoch = math.ceil(len(data.train_data.x_train) / 8)
    reporter = ListReporter()
    result = train(config, data.train_data, reporter, CPU, loss_points_per_epoch=4)
    steps = [step for step, _ in reporter.points]
    assert steps == sorted(set(steps)) and steps[0] == 1
    for step, metrics in reporter.points:
        assert metrics["epoch"] == pytest.approx(step / per_epoch)
        assert math.isfinite(metrics["train_loss"])
    ends = [(step, m) for step, m in reporter.points if "val_loss" in m]
    assert [step for step, _ in ends] == [per_epoch * k for k in (1, 2, 3)]
    assert [m["epoch"] for _, m in ends] == [1.0, 2.0, 3.0]
    assert len(reporter.points) >= 3 * 4  # about 4 points per epoch
    assert result.steps_completed == 3 * per_epoch
    assert [h["train_loss"] for h in result.history] != [m["train_loss"] for _, m in ends]


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


def test_epoch_scores_match_scikit_learn():
    from sklearn import metrics as skm

    from engine.ml.train import classification_scores

    rng = np.random.default_rng(0)
    for n_classes, n in [(2, 50), (3, 7), (5, 200)]:
        y_true = rng.integers(0, n_classes, n)
        y_pred = rng.integers(0, n_classes, n)
        y_true[0] = 0  # make sure at least one class is present
        ours = classification_scores(torch.from_numpy(y_true), torch.from_numpy(y_pred), n_classes)
        assert ours["val_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
        assert ours["val_f1_macro"] == pytest.approx(
            skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
        )
        assert ours["val_balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y_true, y_pred)
        )


def _imbalanced_frame(n_major: int = 380, n_minor: int = 20, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = np.array(["common"] * n_major + ["rare"] * n_minor)
    shift = np.where(y == "rare", 1.5, 0.0)
    return pd.DataFrame(
        {"a": rng.normal(size=len(y)) + shift, "b": rng.normal(size=len(y)) + shift, "y": y}
    )


def _prepare_frame(frame, **values):
    from engine.data.columns import build_schema
    from engine.ml.pipeline import prepare_tabular

    frame, schema = build_schema(frame, "y", "imbalanced.csv")
    config = validate_config(values)
    return config, prepare_tabular(frame, schema, config, CPU)


def test_class_weights_and_weighted_sampling_lift_the_rare_class():
    frame = _imbalanced_frame()
    recalls = {}
    for imbalance in ("none", "class_weights", "weighted_sampling"):
        config, data = _prepare_frame(
            frame, imbalance=imbalance, epochs=15, monitor="val_balanced_accuracy"
        )
        result = train(config, data.train_data, ListReporter(), CPU)
        report = evaluate_on_test(result.model, data, CPU)
        recalls[imbalance] = report["metrics"]["test_balanced_accuracy"]
    assert recalls["class_weights"] > recalls["none"]
    assert recalls["weighted_sampling"] > recalls["none"]


def test_early_stopping_on_a_chosen_metric_keeps_the_best_epoch(db, demo_datasets):
    _, config, data = _prepared(
        db, "iris", epochs=300, early_stopping_patience=5, monitor="val_accuracy"
    )
    reporter = ListReporter()
    result = train(config, data.train_data, reporter, CPU)
    assert result.stopped_early and result.epochs_completed < 300
    accuracies = [m["val_accuracy"] for _, m in reporter.points]
    # The first epoch with the best score is kept, and patience epochs followed it.
    assert result.best_epoch == accuracies.index(max(accuracies)) + 1
    assert result.epochs_completed - result.best_epoch == 5


def test_monitor_must_fit_the_task(db, demo_datasets):
    _, config, data = _prepared(db, "diabetes", monitor="val_accuracy")
    with pytest.raises(ConfigError, match="monitor: val_accuracy is not measured for regression"):
        train(config, data.train_data, ListReporter(), CPU)


def test_warmup_clipping_and_label_smoothing(db, demo_datasets):
    _, config, data = _prepared(
        db,
        "iris",
        epochs=8,
        warmup_epochs=3,
        grad_clip_norm=0.5,
        label_smoothing=0.1,
        lr_schedule="cosine",
    )
    reporter = ListReporter()
    result = train(config, data.train_data, reporter, CPU)
    lrs = [m["lr"] for _, m in reporter.points]
    assert lrs[0] == pytest.approx(1e-4)  # warm-up starts at 10% of the learning rate
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(1e-3)
    assert lrs[-1] < lrs[3]  # then the cosine decay
    report = evaluate_on_test(result.model, data, CPU)
    assert report["metrics"]["test_accuracy"] > 0.6


def test_report_has_curves_per_class_scores_and_worst_mistakes(db, demo_datasets):
    _, config, data = _prepared(db, "wine", epochs=3)
    result = train(config, data.train_data, ListReporter(), CPU)
    report = evaluate_on_test(result.model, data, CPU)
    metrics = report["metrics"]
    for key in (
        "test_accuracy",
        "test_balanced_accuracy",
        "test_f1_macro",
        "test_f1_weighted",
        "test_precision_macro",
        "test_recall_weighted",
        "test_roc_auc",
        "test_log_loss",
    ):
        assert 0 <= metrics[key] <= (10 if key == "test_log_loss" else 1), key
    assert set(report["roc_curves"]) == set(report["classes"]) == set(report["pr_curves"])
    roc = report["roc_curves"][report["classes"][0]]
    assert roc["fpr"][0] == 0 and roc["fpr"][-1] == 1 and 0 <= roc["auc"] <= 1
    for mistake in report["worst_mistakes"]:
        assert mistake["true"] != mistake["predicted"]
        assert "alcohol" in mistake["input"]  # the test row, as a person reads it
    confidences = [m["confidence"] for m in report["worst_mistakes"]]
    assert confidences == sorted(confidences, reverse=True)


def test_regression_report_has_predictions_and_largest_errors(db, demo_datasets):
    _, config, data = _prepared(db, "diabetes", epochs=5)
    result = train(config, data.train_data, ListReporter(), CPU)
    report = evaluate_on_test(result.model, data, CPU)
    assert report["metrics"]["test_mse"] == pytest.approx(report["metrics"]["test_rmse"] ** 2)
    assert len(report["predictions"]["true"]) == len(report["predictions"]["predicted"]) > 10
    errors = [abs(m["error"]) for m in report["worst_mistakes"]]
    assert errors == sorted(errors, reverse=True) and len(errors) == 20
    assert "bmi" in report["worst_mistakes"][0]["input"]
