"""Resume checkpoints in-process: a run stopped after epoch k and resumed from its checkpoint
trains exactly as the uninterrupted run (same metrics, same weights), for each schedule."""

from __future__ import annotations

import pytest
import torch

from db import datasets as dataset_store
from db import metrics as metric_store
from db import runs as run_store
from db.writes import metrics as metric_writes
from engine.core.config import validate_config
from engine.core.settings import Settings
from engine.data.stored import load_frame
from engine.ml.checkpoints import (
    InvalidCheckpoint,
    TrainState,
    load_train_state,
    save_train_state,
    saved_epoch,
)
from engine.ml.device import choose_device
from engine.ml.pipeline import prepare_tabular
from engine.ml.train import ListReporter, train
from engine.services.launch import submit_run

CPU = choose_device("cpu")


class StopAfter(ListReporter):
    """Asks the loop to stop once `epoch` epochs were reported (like a cancel)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def should_stop(self) -> bool:
        return sum("val_loss" in metrics for _, metrics in self.points) >= self.epoch


@pytest.mark.parametrize(
    "values",
    [
        {"lr_schedule": "cosine", "restore_best_weights": True, "dropout": 0.3},
        {"lr_schedule": "step", "step_size": 2, "optimizer": "sgd", "batch_size": 16},
    ],
)
def test_resumed_run_matches_the_uninterrupted_one(db, demo_datasets, tmp_path, values):
    settings = Settings.from_env()
    record = dataset_store.get_dataset_by_name(db, "iris")
    config = validate_config({"epochs": 6, **values})
    data = prepare_tabular(load_frame(settings, record), record.schema, config, CPU)

    live = {"loss_points_per_epoch": 3}  # training-loss points within each epoch too
    straight = ListReporter()
    full = train(config, data.train_data, straight, CPU, **live)

    path = tmp_path / "resume.pt"
    saved: list[int] = []

    def checkpoint(epoch, capture):  # noqa: ANN001
        save_train_state(path, capture())
        saved.append(epoch)

    first = StopAfter(3)
    stopped = train(config, data.train_data, first, CPU, on_epoch_end=checkpoint, **live)
    assert stopped.cancelled and stopped.epochs_completed == 3 and saved == [1, 2, 3]
    assert saved_epoch(path) == 3 and not path.with_name("resume.pt.tmp").exists()

    second = ListReporter()
    resumed = train(config, data.train_data, second, CPU, resume=load_train_state(path), **live)
    # Every point at its optimizer step, each once, as in the uninterrupted run: the resumed
    # run's steps go on from the checkpointed epoch's last step.
    steps = [step for step, _ in first.points + second.points]
    assert steps == [step for step, _ in straight.points] and steps == sorted(set(steps))
    ends = [(step, m["epoch"]) for step, m in first.points + second.points if "val_loss" in m]
    per_epoch = ends[0][0]
    assert ends == [(per_epoch * e, float(e)) for e in range(1, 7)] and len(steps) > len(ends)
    for (_, a), (_, b) in zip(straight.points, first.points + second.points, strict=True):
        assert a.keys() == b.keys()
        for key in a.keys() - {"epoch_seconds"}:
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
    assert resumed.best_epoch == full.best_epoch
    for name, tensor in full.model.state_dict().items():
        assert torch.allclose(tensor, resumed.model.state_dict()[name], atol=1e-6), name
    assert len(resumed.history) == 6


def test_resume_checkpoint_loads_with_weights_only_and_rejects_junk(tmp_path):
    assert load_train_state(tmp_path / "missing.pt") is None
    junk = tmp_path / "junk.pt"
    torch.save({"format": "something else"}, junk)
    with pytest.raises(InvalidCheckpoint, match="not a valid Seedlab checkpoint"):
        load_train_state(junk)  # tests/test_tampered_checkpoint.py has the hostile ones
    assert saved_epoch(junk) is None


def test_points_past_the_checkpoint_are_discarded_and_the_summary_rebuilt(db, demo_datasets):
    """What a resumed runner does first: the points a dead attempt wrote after its checkpoint go
    (they are logged again), with the summary's last/min/max as if they never were."""
    run_id = submit_run(db, "iris", {"epochs": 5})
    # 4 steps per epoch; a train-loss point every 2 steps; the attempt died in epoch 3.
    points = []
    for step in range(2, 11, 2):
        points += [("train_loss", step, 10.0 - step, 0.0), ("epoch", step, step / 4, 0.0)]
    points += [("val_loss", 4, 5.0, 0.0), ("val_loss", 8, 3.0, 0.0)]
    metric_writes.append_metrics(db, run_id, points)
    assert metric_writes.discard_after_epoch(db, run_id, 2) == 2  # train_loss, epoch at step 10
    steps = metric_store.metric_history(db, [run_id], ["train_loss"])["step"].tolist()
    assert steps == [2, 4, 6, 8]
    summary = run_store.get_run(db, run_id).summary
    assert summary["train_loss"] == {"last": 2.0, "step": 8, "min": 2.0, "max": 8.0}
    assert summary["epoch"]["last"] == 2.0 and summary["val_loss"]["last"] == 3.0
    # A fresh start (no checkpoint) discards every point of the attempt before it.
    assert metric_writes.discard_after_epoch(db, run_id, 0) == 10
    assert run_store.get_run(db, run_id).summary == {}


def test_a_side_file_left_by_a_kill_between_the_two_writes_is_not_believed(tmp_path):
    """A process killed after the checkpoint's rename but before its side file's: the side file
    still names the previous epoch, and the requeue decision must see what a resume will load."""

    def state(epoch: int) -> TrainState:
        rng = torch.get_rng_state()
        return TrainState(epoch, {"w": torch.zeros(epoch)}, {}, None, None, rng, [], rng)

    path = tmp_path / "resume.pt"
    save_train_state(path, state(2))
    side = path.with_suffix(".json")
    stale = side.read_text()
    assert saved_epoch(path) == 2
    save_train_state(path, state(3))
    side.write_text(stale)  # as if killed before the side file was replaced
    assert saved_epoch(path) == 3 == load_train_state(path).epoch
