"""Resume checkpoints in-process: a run stopped after epoch k and resumed from its checkpoint
trains exactly as the uninterrupted run (same metrics, same weights), for each schedule."""

from __future__ import annotations

import pytest
import torch

from db import datasets as dataset_store
from engine.core.config import validate_config
from engine.core.settings import Settings
from engine.data.stored import load_frame
from engine.ml.checkpoints import (
    InvalidCheckpoint,
    load_train_state,
    save_train_state,
    saved_epoch,
)
from engine.ml.device import choose_device
from engine.ml.pipeline import prepare_tabular
from engine.ml.train import ListReporter, train

CPU = choose_device("cpu")


class StopAfter(ListReporter):
    """Asks the loop to stop once `epoch` epochs were reported (like a cancel)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def should_stop(self) -> bool:
        return len(self.points) >= self.epoch


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

    straight = ListReporter()
    full = train(config, data.train_data, straight, CPU)

    path = tmp_path / "resume.pt"
    saved: list[int] = []

    def checkpoint(epoch, capture):  # noqa: ANN001
        save_train_state(path, capture())
        saved.append(epoch)

    first = StopAfter(3)
    stopped = train(config, data.train_data, first, CPU, on_epoch_end=checkpoint)
    assert stopped.cancelled and stopped.epochs_completed == 3 and saved == [1, 2, 3]
    assert saved_epoch(path) == 3 and not path.with_name("resume.pt.tmp").exists()

    second = ListReporter()
    resumed = train(config, data.train_data, second, CPU, resume=load_train_state(path))
    assert [step for step, _ in first.points + second.points] == [1, 2, 3, 4, 5, 6]
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
