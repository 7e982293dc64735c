"""What the newcomer walk found (issue 18, "Fix what the newcomer walk found"), one test each:
the Engine page's CPU share, the Runs list's default columns, the Run page's metric cards, a
scikit-learn warning repeated in a run's log, the Models page's descriptions, and the sweeps'
trial counts, parameters, importances and chart titles."""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from dashboard.components.run_table import number_format
from db import datasets as dataset_store
from db.writes import metrics as metric_writes
from db.writes import registry as registry_writes
from db.writes import runs as run_writes
from db.writes import workers as worker_writes
from db.writes.datasets import insert_dataset
from engine.core.catalog import TEST_METRICS, model_summary
from engine.data.datasets import ingest_bytes
from engine.execution import devices
from engine.ml.evaluate import balanced_accuracy
from engine.services import sweeps
from engine.services.launch import submit_run
from tests.support.data import completed_run
from tests.support.pages import open_page, plotly_figures, texts

CPU = {"kind": "cpu", "index": None, "name": "CPU (2 cores, x86_64)", "memory_total": 2**33}

# ---------------------------------------------------------------- one scikit-learn warning, 92×


def test_balanced_accuracy_is_sklearns_without_the_warning() -> None:
    """The model predicts classes the split lacks (2 and 3): scikit-learn warns on every call;
    the same number comes back here with nothing to warn about."""
    y_true = np.array([0, 0, 1, 1, 1, 4])
    y_pred = np.array([0, 2, 1, 3, 1, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.balanced_accuracy_score(y_true, y_pred)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = balanced_accuracy(y_true, y_pred)
    assert got == pytest.approx(expected) and got == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert caught == []


def _id_like_table(rows: int = 160, classes: int = 120) -> bytes:
    """cars.csv's shape: the target is (nearly) one class per row, so a test split lacks most
    classes and the model predicts some that are absent."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "mpg": rng.normal(20, 5, rows),
            "weight": rng.normal(3000, 500, rows),
            "origin": rng.choice(["US", "EU", "JP"], rows),
            "Name": [f"car {i % classes}" for i in range(rows)],
        }
    )
    return frame.to_csv(index=False).encode()


def test_a_run_with_many_small_classes_warns_nothing_from_scikit_learn(settings, db) -> None:
    """The walk's run log held "y_pred contains classes not in y_true" 92 times: once per
    scoring pass of permutation importance, which monitors balanced accuracy here."""
    ingest_bytes(settings, db, _id_like_table(), filename="cars.csv", name="cars", target="Name")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        completed_run(settings, db, "cars", monitor="val_balanced_accuracy")
    from_sklearn = [str(w.message) for w in caught if "sklearn" in w.filename]
    assert from_sklearn == []


# ---------------------------------------------------------------- Engine page: CPU share


def test_cpu_busy_share_is_cpu_time_between_probes(tmp_path, monkeypatch) -> None:
    """Busy ticks over all ticks of all cores since the last probe: a share of the machine,
    0-100, not the load average (runnable processes) over the core count."""
    stat = tmp_path / "stat"
    stat.write_text("cpu  150 0 50 350 50 0 0 0 0 0\ncpu0 1 2 3 4\n", encoding="ascii")
    monkeypatch.setattr(devices, "PROC_STAT", stat)
    monkeypatch.setattr(devices, "_last_cpu_times", [(100, 400)])  # the previous probe
    # 100 busy ticks out of 200 since then; iowait (50 → 50) counts as idle.
    assert devices.cpu_busy_percent(cores=2) == 50.0
    stat.write_text("cpu  150 0 50 550 50 0 0 0 0 0\n", encoding="ascii")  # idle since
    assert devices.cpu_busy_percent(cores=2) == 0.0
    measured = devices.cpu_device()["utilization"]  # this machine, through /proc/stat or not
    assert measured is None or 0 <= measured <= 100


def test_engine_page_shows_utilization_as_a_percentage(settings, db) -> None:
    """The walk saw "5,791.02 %" for a CPU 57.9 % busy: Streamlit's default format for a float
    progress column reads it as a fraction."""
    cpu = {**CPU, "utilization": 57.91}
    worker_writes.register_worker(
        db, "w", hostname="box", pid=os.getpid(), max_concurrent=1, devices=[cpu]
    )
    at = open_page("views/engine.py")
    table = at.dataframe[0]
    assert table.value["utilization %"].tolist() == [57.91]
    shown = json.loads(table.proto.columns)["utilization %"]["type_config"]
    assert (shown["min_value"], shown["max_value"]) == (0, 100)
    # Streamlit formats with sprintf (Python's % operator agrees for this format).
    assert shown.get("format") and shown["format"] % 57.91 == "58 %"


# ---------------------------------------------------------------- Models: the description


def test_models_page_shows_each_versions_description(settings, db, demo_datasets) -> None:
    """The description was the table's last column, after every metric: off-screen."""
    runs = []
    for _ in range(2):
        run_id = submit_run(db, "iris", {"epochs": 1})
        run_writes.claim_next_run(db, "w")
        run_writes.finish_run(db, run_id, "completed")
        runs.append(run_id)
    registry_writes.register_version(
        db, runs[0], "churn", stage="production", description="Scores [monthly] churn risk"
    )
    registry_writes.register_version(db, runs[1], "churn", description="")
    at = open_page("views/models.py")
    table = at.dataframe[0].value
    assert list(table.columns).index("description") <= 5  # beside version, stage and run
    assert table["description"].fillna("").tolist() == ["", "Scores [monthly] churn risk"]
    # The production version's words under the name, literal (no markdown link from "[…]").
    assert "v1: Scores \\[monthly\\] churn risk" in texts(at.markdown)


# ---------------------------------------------------------------- Run page: metric cards


def test_run_page_metric_cards_have_labels_that_fit(settings, db, demo_datasets) -> None:
    """Six cards in a row cut "test balanced accuracy" to "test balanced ac…": the cards now
    come three a row, labelled without the shared "test " (said once in a caption), the full
    name in their help."""
    run_id = submit_run(db, "iris", {"epochs": 1})
    run_writes.claim_next_run(db, "w")
    scores = {k: 0.9 for k in TEST_METRICS["classification"]} | {"test_log_loss": 0.3}
    run_writes.record_progress(db, run_id, [(k, 1, v, 0.0) for k, v in scores.items()])
    run_writes.finish_run(db, run_id, "completed")
    at = open_page("views/run_detail.py", run=str(run_id))
    cards = {m.label: m for m in at.metric}
    assert "balanced accuracy" in cards and "accuracy" in cards
    assert all(len(label) <= 20 for label in cards), list(cards)  # fits a third of the page
    assert cards["balanced accuracy"].proto.help == "test balanced accuracy"
    assert cards["accuracy"].value == "90.0 %"  # a share as a percentage, not 0.9
    assert "test split" in texts(at.caption)


# ---------------------------------------------------------------- Sweeps


def _sweep(db) -> int:  # noqa: ANN001
    return sweeps.submit_sweep(
        db,
        "iris",
        {
            "space": {
                "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                "dropout": [0, 0.2],
            },
            "objective": "val_accuracy",
        },
    )


def _trial(db, sweep_id: int, lr: float, dropout: float, best: float | None) -> int:  # noqa: ANN001
    """A trial run: finished with `best` as its val accuracy, else left running."""
    values = {"learning_rate": lr, "dropout": dropout, "monitor": "val_accuracy"}
    run_id = submit_run(db, "iris", values, sweep_id=sweep_id)
    run_writes.claim_next_run(db, "test-worker")
    if best is not None:
        metric_writes.append_metrics(db, run_id, [("val_accuracy", 1, best, time.time())])
        run_writes.finish_run(db, run_id, "completed")
    return run_id


def test_sweep_counts_a_queued_trial_as_queued(settings, db, demo_datasets) -> None:
    """The walk's sweep said "2 running" with one trial training and one waiting."""
    sweep_id = _sweep(db)
    _trial(db, sweep_id, 1e-3, 0.0, best=None)  # claimed: running
    submit_run(db, "iris", {"learning_rate": 2e-3}, sweep_id=sweep_id)  # waits in the queue
    at = open_page("views/sweeps.py", sweep=str(sweep_id))
    assert "1 running, 1 queued" in texts(at.markdown)
    assert at.dataframe[0].value["state"].tolist() == ["running", "queued"]


def test_sweep_parameters_are_rounded_for_reading(settings, db, demo_datasets) -> None:
    sweep_id = _sweep(db)
    _trial(db, sweep_id, 0.0012345678901234, 0.2, best=0.9)
    at = open_page("views/sweeps.py", sweep=str(sweep_id))
    table = at.dataframe[0].value
    assert table["learning_rate"].tolist() == ["0.00123"]
    assert table["dropout"].tolist() == ["0.2"]
    assert "1 completed" in texts(at.markdown)


def test_importances_say_how_many_trials_they_rest_on(settings, db, demo_datasets) -> None:
    """Three trials drew an importance chart with no caveat: now none below five, and a
    caveat naming the number of trials above."""
    sweep_id = _sweep(db)
    rng = np.random.default_rng(0)
    for i in range(3):
        _trial(db, sweep_id, float(10 ** rng.uniform(-4, -2)), [0.0, 0.2][i % 2], 0.5 + i / 10)
    at = open_page("views/sweeps.py", sweep=str(sweep_id))
    assert "sw_importance" not in [c.key for c in at.get("plotly_chart")]
    assert "appear once 5 trials with different settings have completed (3 so far)" in texts(
        at.caption
    )
    for i in range(3, 6):
        _trial(db, sweep_id, float(10 ** rng.uniform(-4, -2)), [0.0, 0.2][i % 2], 0.5 + i / 20)
    at = open_page("views/sweeps.py", sweep=str(sweep_id))
    figures = plotly_figures(at)
    assert len(figures) == 4 and not any(f["layout"].get("title", {}).get("text") for f in figures)
    assert "From 6 completed trials: too few for a steady ranking" in texts(at.caption)


# ---------------------------------------------------------------- Runs list: columns, model


def _finished_with(db, dataset: str | int, config: dict, metrics: dict[str, float]) -> int:  # noqa: ANN001
    run_id = run_writes.create_run(db, name="r", dataset_id=dataset, config=config)
    run_writes.claim_next_run(db, "w")
    run_writes.record_progress(db, run_id, [(k, 1, v, 0.0) for k, v in metrics.items()])
    run_writes.finish_run(db, run_id, "completed")
    return run_id


def test_runs_list_shows_headline_metrics_by_label(settings, db, demo_datasets) -> None:
    """The walk's default columns were `metric:best_epoch`, `metric:epoch_seconds` and
    `metric:lr` (the first alphabetically), with a best epoch of "7.0000"."""
    iris = dataset_store.get_dataset_by_name(db, "iris").id
    config = {"model": "auto", "hidden_sizes": [128, 64], "learning_rate": 0.001}
    scores = {"test_accuracy": 0.9333, "test_balanced_accuracy": 0.93, "test_f1_macro": 0.92}
    extras = {"best_epoch": 7.0, "epoch_seconds": 0.12, "lr": 0.001, "val_loss": 0.2}
    _finished_with(db, iris, config, scores | extras)
    at = open_page("views/runs.py")
    headline = ["metric:test_accuracy", "metric:test_balanced_accuracy", "metric:test_f1_macro"]
    assert at.multiselect(key="rf_cols").value == headline
    table = at.dataframe[0]
    assert [c for c in table.value.columns if c.startswith("metric:")] == headline
    assert table.value["model"].tolist() == ["MLP 128→64"]
    shown = json.loads(table.proto.columns)
    assert shown["metric:test_accuracy"]["label"] == "test accuracy"
    assert shown["metric:test_accuracy"]["type_config"]["format"] == "percent"
    assert shown["metric:test_f1_macro"]["label"] == "test F1 (macro)"

    at.multiselect(key="rf_cols").set_value([*headline, "metric:best_epoch", "metric:lr"]).run()
    shown = json.loads(at.dataframe[0].proto.columns)
    assert shown["metric:best_epoch"]["type_config"]["format"] == "%d"  # 7, not 7.0000
    assert shown["metric:lr"]["label"] == "learning rate"
    assert shown["metric:lr"]["type_config"]["format"] == "%.4f"  # not a share: no percent
    perfect = pd.Series([1.0, 0.0])
    assert number_format("metric:test_accuracy", perfect) == "percent"  # 100 %, not "1"
    assert number_format("metric:test_r2", pd.Series([0.5])) == "%.4f"  # R² can be < 0
    assert number_format("metric:val_loss", pd.Series([470_000.5])) == "%.0f"


def test_model_column_names_the_family_that_trained(settings, db, demo_datasets) -> None:
    """A CNN on images was listed as "auto 128→64": the config's word and the MLP's sizes."""
    images = insert_dataset(
        db,
        name="digits",
        kind="image",
        task="classification",
        target="label",
        schema={"columns": [], "features": []},
        n_rows=10,
        n_columns=1,
        sha256="0" * 64,
        path="/nowhere",
        source_filename="digits.zip",
    ).id
    config = {"model": "auto", "hidden_sizes": [128, 64]}
    cnn = _finished_with(db, images, config, {"test_accuracy": 0.5})
    assert model_summary(config, "image") == "CNN"
    assert model_summary({"model": "lstm"}, "text") == "LSTM"
    assert model_summary({"model": "mlp", "hidden_sizes": []}, "tabular").startswith("Linear")
    assert model_summary({"model": "auto", "hidden_sizes": [32]}, None) == "auto"  # no dataset
    at = open_page("views/runs.py")
    assert at.dataframe[0].value.set_index("id").loc[cnn, "model"] == "CNN"
    home = open_page("views/home.py")
    listed = [df.value for df in home.dataframe if "model" in df.value.columns]
    assert listed and listed[0].set_index("id").loc[cnn, "model"] == "CNN"


def test_scores_that_are_shares_read_as_percentages() -> None:
    """Accuracy 0.8636 is "86.4 %" on a card; a loss, an error or R² keeps its own number."""
    from engine.core.formatting import format_metric

    assert format_metric("test_accuracy", 0.86364) == "86.4 %"
    assert format_metric("val_f1_macro", 1.0) == "100.0 %"
    assert format_metric("test_balanced_accuracy", 0.0) == "0.0 %"
    assert format_metric("test_log_loss", 0.3) == "0.3"
    assert format_metric("test_rmse", 12.5) == "12.5"
    assert format_metric("test_r2", 0.91) == "0.91"
    assert format_metric("epoch_seconds", 0.5) == "0.5"
    assert format_metric("test_accuracy", None) == "—"
    assert format_metric("test_accuracy", float("nan")) == "n/a"
