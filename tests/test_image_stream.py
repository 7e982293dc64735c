"""Image sets streamed from disk by DataLoader workers train exactly like in-memory ones, and
torch.compile is an opt-in that trains the same model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from db import datasets as dataset_store
from engine.core.config import validate_config
from engine.core.run_files import report_path
from engine.ml.device import choose_device
from engine.ml.pipeline import evaluate_on_test, prepare_dataset
from engine.ml.prep.image_stream import StreamedImages, stream_or_memory
from engine.ml.train import ListReporter, train
from tests.support.data import completed_run

CPU = choose_device("cpu")


@pytest.fixture
def digits(settings, db):
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)
    return dataset_store.get_dataset_by_name(db, "digits")


def _train(settings, record, **values):
    config = validate_config({"epochs": 2, "batch_size": 64, "image_size": 8, **values})
    data = prepare_dataset(settings, record, config, CPU)
    result = train(config, data.train_data, ListReporter(), CPU)
    return data, result


def test_streamed_images_train_like_in_memory_ones(settings, digits):
    memory, in_memory = _train(settings, digits, data_loading="memory", augment_crop=1)
    streamed, from_disk = _train(
        settings, digits, data_loading="stream", loader_workers=2, augment_crop=1
    )
    assert isinstance(streamed.train_data.x_train, StreamedImages)
    assert isinstance(memory.train_data.x_train, torch.Tensor)
    # Same seed, same batch order, same pixels: the same curves (up to float summation order
    # in the normalization statistics).
    for a, b in zip(in_memory.history, from_disk.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)
    report = evaluate_on_test(from_disk.model, streamed, CPU)
    assert report["metrics"]["test_accuracy"] == pytest.approx(
        evaluate_on_test(in_memory.model, memory, CPU)["metrics"]["test_accuracy"], abs=1e-6
    )
    assert np.array(report["confusion_matrix"]).sum() == streamed.split_sizes["test"]


def test_a_streamed_run_completes_through_the_runner(settings, db, digits):
    run_id = completed_run(
        settings, db, "digits", epochs=1, image_size=8, data_loading="stream", loader_workers=1
    )
    assert report_path(settings, run_id).is_file()


def test_auto_streams_only_sets_bigger_than_the_budget():
    assert stream_or_memory("auto", 1000, (3, 32, 32), CPU) == "memory"
    assert stream_or_memory("auto", 10_000_000, (3, 224, 224), CPU) == "stream"
    assert stream_or_memory("memory", 10_000_000, (3, 224, 224), CPU) == "memory"


@pytest.mark.slow  # torch.compile: ~45 s of compiling on a cold cache
def test_torch_compile_is_an_opt_in_that_trains_the_same_model(
    settings, db, demo_datasets, monkeypatch
):
    import torch._inductor.config

    # Inductor compiles in a pool of worker processes by default; on a 2-core CI machine
    # starting that pool costs more than it saves on two tiny graphs (~30 % of this test).
    monkeypatch.setattr(torch._inductor.config, "compile_threads", 1)
    record = dataset_store.get_dataset_by_name(db, "iris")
    # One batch per epoch (batch ≥ rows): two graphs to compile (train, eval), no recompiles
    # for a ragged last batch, so the cold compile stays short.
    values = {"epochs": 2, "batch_size": 512, "hidden_sizes": [16], "dropout": 0.0}
    eager_config = validate_config(values)
    data = prepare_dataset(settings, record, eager_config, CPU)
    eager = train(eager_config, data.train_data, ListReporter(), CPU)
    compiled = train(
        validate_config({**values, "compile": True}), data.train_data, ListReporter(), CPU
    )
    # The checkpoint's keys do not change (no "_orig_mod." prefix) and the weights agree.
    assert compiled.model.state_dict().keys() == eager.model.state_dict().keys()
    for key, value in eager.model.state_dict().items():
        assert torch.allclose(value, compiled.model.state_dict()[key], atol=1e-4), key
