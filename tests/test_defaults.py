"""Suggested settings for runs left at their defaults: by kind, size and label balance."""

from __future__ import annotations

import pytest

from db import runs as run_store
from engine.core.config import RunConfig
from engine.core.defaults import suggest_config
from engine.core.errors import ConfigError
from engine.data.datasets import ingest_bytes
from engine.services.launch import submit_run


def test_batch_and_epochs_follow_the_size():
    small = suggest_config("tabular", 150)
    large = suggest_config("tabular", 1_000_000)
    assert small["batch_size"] == 32 and small["epochs"] == 50
    assert large["batch_size"] == 1024 and 10 <= large["epochs"] < small["epochs"]
    assert suggest_config("image", 5_000)["batch_size"] == 64
    for kind in ("tabular", "image", "text"):
        config = suggest_config(kind, 2_000)
        assert config["model"] == "auto" and config["early_stopping_patience"] >= 5


def test_skewed_labels_keep_the_users_objective_and_no_class_weights():
    # Class weights trade accuracy for rare-class recall: offered, never imposed silently.
    skewed = suggest_config("tabular", 1000, {"ok": 950, "fraud": 50})
    assert "imbalance" not in skewed and "monitor" not in skewed
    config = RunConfig.model_validate(skewed)
    assert config.imbalance == "none" and config.monitor == "val_loss"


def test_a_skewed_dataset_submitted_with_no_options_trains_unweighted(settings, db):
    rows = [f"{i % 7},{i % 3},{'fraud' if i % 20 == 0 else 'ok'}" for i in range(400)]
    raw = ("a,b,label\n" + "\n".join(rows)).encode()
    ingest_bytes(settings, db, raw, filename="skew.csv", name="skew", target="label")
    config = run_store.get_run(db, submit_run(db, "skew", {})).config
    assert config["imbalance"] == "none" and config["monitor"] == "val_loss"
    # Offered, and taken when asked for.
    asked = submit_run(db, "skew", {"imbalance": "class_weights"})
    assert run_store.get_run(db, asked).config["imbalance"] == "class_weights"


def test_submit_fills_what_the_user_left_out(db, demo_datasets):
    run_id = submit_run(db, "iris", {"epochs": 7})
    config = run_store.get_run(db, run_id).config
    assert config["epochs"] == 7  # the user's value wins
    assert config["early_stopping_patience"] == 10 and config["batch_size"] == 32


def test_a_monitor_that_does_not_fit_the_task_is_refused_at_submit(db, demo_datasets):
    with pytest.raises(ConfigError, match="monitor: val_accuracy is not measured for regression"):
        submit_run(db, "diabetes", {"monitor": "val_accuracy"})
