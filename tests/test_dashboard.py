"""Dashboard pages through Streamlit's AppTest, on a real migrated SQLite home per test.

Runs that "completed" or "failed" are made the way the engine makes them (create → claim →
metrics → finish through db.*), so the pages read exactly what a real worker would leave.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from db import datasets as dataset_store
from db import runs as run_store
from db.session import utcnow
from db.writes import artifacts as artifact_writes
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from db.writes import workers as worker_writes
from engine.core.config import RunConfig
from engine.data.demo_run import DEMO_RUN_CONFIG, DEMO_RUN_DATASET
from engine.report import charts
from engine.services.launch import find_dataset, submit_run
from tests.support.commands import ROOT
from tests.support.pages import (
    button,
    current_title,
    open_page,
    open_tab,
    plotly_figures,
    texts,
)


def recorded_completed_run(settings, db, *, dataset: str = "iris", epochs: int = 3) -> int:  # noqa: ANN001
    """A run taken through the engine's lifecycle to `completed`, with curves and a report,
    written through db.* as a worker would, without training (tests/support/data.py's
    `completed_run` trains one for real)."""
    run_id = submit_run(db, dataset, {"epochs": epochs}, name=f"{dataset} finished")
    assert run_writes.claim_next_run(db, "test-worker") == run_id
    run_writes.mark_started(db, run_id, pid=12345, device="cpu")
    now = time.time()
    points = []
    for epoch in range(1, epochs + 1):
        points += [
            ("train_loss", epoch, 1.0 / epoch, now),
            ("val_loss", epoch, 1.2 / epoch, now),
            ("val_accuracy", epoch, 0.5 + 0.1 * epoch, now),
            ("lr", epoch, 1e-3, now),
        ]
    metric_writes.append_metrics(db, run_id, points)
    test_metrics = {"test_accuracy": 0.9333, "test_f1_macro": 0.93, "test_log_loss": 0.21}
    metric_writes.append_metrics(db, run_id, [(k, epochs, v, now) for k, v in test_metrics.items()])
    classes = find_dataset(db, dataset).schema["classes"]
    run_dir = settings.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(
        json.dumps(
            {
                "task": "classification",
                "classes": classes,
                "metrics": test_metrics,
                "confusion_matrix": [[8, 0, 0], [0, 6, 1], [0, 1, 7]],
                "per_class": {
                    c: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 8} for c in classes
                },
                "n_test": 23,
            }
        )
    )
    (run_dir / "run.log").write_text("epoch 1 loss 1.0\nepoch 3 loss 0.33\nrun completed\n")
    # The verdict a runner stores (engine/ml/verdict.py): no warnings, so the badge is green.
    verdict = {
        "version": 1,
        "summary": "Beats the most-frequent-class guess by 60 points, within 1 point of "
        "gradient boosting.",
        "short": "+60 pts vs guess · ≈ gradient boosting",
        "metric": "test_accuracy",
        "value": 0.9333,
        "baseline": {"trivial": {"name": "the most-frequent-class guess", "metrics": {}}},
        "warnings": [],
    }
    assert run_writes.finish_run(db, run_id, "completed", verdict=verdict)
    return run_id


GOOD_CSV = "x1,x2,color,label\n" + "\n".join(
    f"{i * 0.5},{(i * 7) % 11},{'red' if i % 3 else 'blue'},{'yes' if i % 2 else 'no'}"
    for i in range(40)
)


# ---------------------------------------------------------------- charts (no Streamlit)


def test_downsample_caps_points_and_keeps_the_ends() -> None:
    frame = pd.DataFrame({"step": np.arange(1, 10_001), "value": np.arange(10_000.0)})
    small = charts.downsample(frame, 2000)
    assert len(small) <= 2000
    assert small["step"].iloc[0] == 1 and small["step"].iloc[-1] == 10_000
    assert charts.downsample(frame.head(50)).equals(frame.head(50))


def test_metric_curves_one_trace_per_key_and_per_run() -> None:
    history = pd.DataFrame(
        {
            "run_id": [1] * 6 + [2] * 3,
            "key": ["train_loss"] * 3 + ["val_loss"] * 3 + ["train_loss"] * 3,
            "step": [1, 2, 3] * 3,
            "value": [0.9, 0.5, 0.3, 1.0, 0.6, 0.4, 0.8, 0.4, 0.2],
            "wall_time": [0.0] * 9,
        }
    )
    single = charts.metric_curves(history[history.run_id == 1], ["train_loss", "val_loss"])
    assert [t.name for t in single.data] == ["train loss", "val loss"]
    assert list(single.data[0].y) == [0.9, 0.5, 0.3]
    several = charts.metric_curves(history, ["train_loss"], run_labels={1: "a", 2: "b"})
    assert [t.name for t in several.data] == ["a", "b"]
    long = pd.DataFrame(
        {
            "run_id": 1,
            "key": "train_loss",
            "step": np.arange(1, 5001),
            "value": np.linspace(1, 0, 5000),
            "wall_time": 0.0,
        }
    )
    assert len(charts.metric_curves(long, ["train_loss"]).data[0].x) <= charts.MAX_POINTS_PER_TRACE


def test_curves_place_points_within_epochs_with_whole_epoch_ticks() -> None:
    """Points at optimizer steps drawn at their epoch: the `epoch` series maps each step (4
    steps an epoch here), the ticks are whole epochs, an axis is at least one epoch wide."""
    steps = [1, 2, 3, 4, 5, 6, 7, 8]
    history = pd.DataFrame(
        {
            "run_id": 1,
            "key": ["train_loss"] * 8 + ["epoch"] * 8 + ["val_loss"] * 2,
            "step": steps + steps + [4, 8],
            "value": [2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6] + [s / 4 for s in steps] + [1.1, 0.8],
            "wall_time": 0.0,
        }
    )
    fig = charts.metric_curves(history, ["train_loss", "val_loss"])
    assert list(fig.data[0].x) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert list(fig.data[1].x) == [1.0, 2.0]
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == ",d"
    first_epoch = charts.metric_curves(history[history["step"] <= 2], ["train_loss"])
    assert list(first_epoch.layout.xaxis.range) == [0, 1]
    old_style = pd.DataFrame(  # 200 epochs, one point each at step = epoch, no epoch series
        {"run_id": 1, "key": "train_loss", "step": np.arange(1, 201), "value": 1.0, "wall_time": 0}
    )
    assert charts.metric_curves(old_style, ["train_loss"]).layout.xaxis.dtick == 20


def test_confusion_matrix_and_histogram() -> None:
    fig = charts.confusion_matrix([[3, 1], [0, 4]], ["cat", "dog"], normalize=True)
    assert list(fig.data[0].z[0]) == [0.75, 0.25]
    with pytest.raises(ValueError, match="square"):
        charts.confusion_matrix([[1, 2, 3]], ["a"])
    hist = charts.target_histogram(pd.Series(np.arange(100_000.0)), name="y", bins=20)
    assert len(hist.data[0].y) == 20 and sum(hist.data[0].y) == 100_000


# ---------------------------------------------------------------- home


def test_home_shows_counts_and_warns_when_engine_is_down(settings, db, demo_datasets) -> None:
    recorded_completed_run(settings, db)
    submit_run(db, "wine", {}, name="waiting")
    at = open_page("views/home.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Datasets"] == "5"
    assert metrics[":gray[●] queued"] == "1" and metrics[":green[●] completed"] == "1"
    assert "engine is not running" in texts(at.warning)
    assert "make run" in texts(at.warning)
    recent = at.dataframe[0].value
    assert list(recent["name"]) == ["waiting", "iris finished"]


def test_home_demo_button_queues_the_digits_demo_run_and_opens_it(settings, db) -> None:
    at = open_page("views/home.py")
    assert "No runs yet" in texts(at.info)
    button(at, "Train a model on a demo dataset").click().run()
    assert not at.exception
    queued = run_store.list_runs(db, statuses=["queued"])
    assert len(queued) == 1
    assert queued[0].dataset_name == DEMO_RUN_DATASET == "digits"
    assert queued[0].config == RunConfig(**DEMO_RUN_CONFIG).model_dump(mode="json")
    assert current_title(at) == f"#{queued[0].id} · digits demo"  # switched to the run page
    assert at.query_params["run"] == str(queued[0].id)


def test_home_says_when_the_engine_is_alive(settings, db) -> None:
    worker_writes.register_worker(db, "w-1", hostname="here", pid=os.getpid(), max_concurrent=1)
    at = open_page("views/home.py")
    assert "engine is running" in texts(at.success)
    assert not at.warning


# ---------------------------------------------------------------- datasets


def test_datasets_empty_state_says_what_to_do(settings, db) -> None:
    at = open_page("views/datasets.py")
    assert "No datasets yet" in texts(at.info)
    button(at, "Add demo datasets").click().run()
    assert {d.name for d in dataset_store.list_datasets(db)} == {
        "iris",
        "wine",
        "breast_cancer",
        "diabetes",
        "support_tickets",
        "digits",
    }
    assert "Added iris" in texts(at.success)


def test_upload_good_csv_adds_a_dataset(settings, db) -> None:
    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(("flowers.csv", GOOD_CSV.encode(), "text/csv")).run()
    assert not at.error, texts(at.error)
    assert at.text_input[0].value == "flowers"  # name defaults to the file stem
    target = at.selectbox[0]
    assert target.options == ["x1", "x2", "color", "label"] and target.value == "label"
    at.text_input[0].set_value("my flowers")
    button(at, "Add dataset").click().run()
    assert not at.exception and not at.error, texts(at.error)
    stored = dataset_store.get_dataset_by_name(db, "my flowers")
    assert stored is not None and stored.target == "label" and stored.n_rows == 40
    assert stored.task == "classification"
    assert "Added dataset 'my flowers'" in texts(at.success)
    # The new dataset is the one on show.
    assert at.subheader[-1].value == "my flowers"


def test_upload_one_class_target_shows_error_and_stores_nothing(settings, db) -> None:
    csv = "a,b,label\n" + "\n".join(f"{i},{i * 2},same" for i in range(10))
    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(("one.csv", csv.encode(), "text/csv")).run()
    button(at, "Add dataset").click().run()
    assert "only one class" in texts(at.error)
    assert not at.exception
    assert dataset_store.list_datasets(db) == []
    assert list((settings.datasets_dir).iterdir()) == []  # no half-written folder left


def test_upload_non_utf8_shows_error_and_stores_nothing(settings, db) -> None:
    at = open_page("views/datasets.py")
    raw = "x,label\n1,café\n2,thé\n".encode("latin-1")
    at.file_uploader[0].set_value(("latin.csv", raw, "text/csv")).run()
    assert "not valid UTF-8" in texts(at.error)
    assert not [b for b in at.button if b.label == "Add dataset"]
    assert dataset_store.list_datasets(db) == []


def test_dataset_detail_shows_preview_profile_and_class_balance(
    settings, db, demo_datasets
) -> None:
    iris = find_dataset(db, "iris")
    at = open_page("views/datasets.py", dataset=str(iris.id))
    assert at.selectbox(key="dataset_pick").value == iris.id
    assert at.subheader[-1].value == "iris"
    frames = [d.value for d in at.dataframe]
    preview = next(f for f in frames if "sepal length (cm)" in f.columns)
    assert len(preview) == 20 and "species" in preview.columns
    profile = next(f for f in frames if "role" in f.columns)
    assert set(profile["column"]) >= {"species", "petal width (cm)"}
    bars = plotly_figures(at)[0]["data"][0]
    assert bars["type"] == "bar"
    assert bars["x"] == iris.schema["classes"] and bars["y"] == [50, 50, 50]


def test_regression_dataset_shows_target_histogram(settings, db, demo_datasets) -> None:
    diabetes = find_dataset(db, "diabetes")
    at = open_page("views/datasets.py", dataset=str(diabetes.id))
    assert "Target distribution" in texts(at.markdown)
    bars = plotly_figures(at)[0]["data"][0]
    assert sum(bars["y"]) == diabetes.n_rows


def test_train_on_this_opens_new_run_with_the_dataset(settings, db, demo_datasets) -> None:
    wine = find_dataset(db, "wine")
    at = open_page("views/datasets.py", dataset=str(wine.id))
    button(at, "Train on this").click().run()
    assert current_title(at) == "New run"
    assert at.selectbox(key="nr_dataset").value == wine.id


# ---------------------------------------------------------------- new run


def test_new_run_form_defaults_come_from_runconfig(settings, db, demo_datasets) -> None:
    # A table (the newest demo dataset is the text one, whose suggested epochs differ).
    at = open_page("views/new_run.py", dataset=str(find_dataset(db, "diabetes").id))
    defaults = RunConfig()
    assert at.text_input(key="nr_hidden_sizes").value == ",".join(map(str, defaults.hidden_sizes))
    assert at.number_input(key="nr_epochs").value == defaults.epochs
    assert at.number_input(key="nr_learning_rate").value == defaults.learning_rate
    assert at.selectbox(key="nr_optimizer").value == defaults.optimizer
    assert at.number_input(key="nr_epochs").help  # every field carries its RunConfig doc
    assert "What will run" in texts(at.subheader)


def test_new_run_submit_queues_a_run_with_the_form_values(settings, db, demo_datasets) -> None:
    wine = find_dataset(db, "wine")
    at = open_page("views/new_run.py", dataset=str(wine.id))
    assert at.selectbox(key="nr_dataset").value == wine.id
    at.text_input(key="nr_hidden_sizes").set_value("32, 16")
    at.number_input(key="nr_learning_rate").set_value(0.01)
    at.number_input(key="nr_epochs").set_value(5)
    at.selectbox(key="nr_optimizer").set_value("sgd")
    at.selectbox(key="nr_device").set_value("cpu")
    at.text_input(key="nr_run_name").set_value("wine sgd")
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, texts(at.error)
    (run,) = run_store.list_runs(db)
    assert run.status == "queued" and run.name == "wine sgd" and run.dataset_id == wine.id
    assert run.config["hidden_sizes"] == [32, 16]
    assert run.config["learning_rate"] == 0.01 and run.config["epochs"] == 5
    assert run.config["optimizer"] == "sgd" and run.config["device"] == "cpu"
    assert current_title(at) == f"#{run.id} · wine sgd"


def test_new_run_dataset_choice_survives_reruns(settings, db, demo_datasets) -> None:
    iris, wine = find_dataset(db, "iris"), find_dataset(db, "wine")
    at = open_page("views/new_run.py", dataset=str(iris.id))
    at.selectbox(key="nr_dataset").set_value(wine.id).run()
    at.run()  # ?dataset= must follow the choice, or this rerun would switch back to iris
    assert at.selectbox(key="nr_dataset").value == wine.id
    assert at.query_params["dataset"] == str(wine.id)
    assert "on **wine** (target cultivar)" in texts(at.markdown)  # the summary follows it


def test_new_run_invalid_value_names_the_field_and_queues_nothing(
    settings, db, demo_datasets
) -> None:
    at = open_page("views/new_run.py", dataset=str(find_dataset(db, "iris").id))
    at.text_input(key="nr_hidden_sizes").set_value("abc")
    button(at, "Start training").click().run()
    assert "Hidden sizes: write integers separated by commas" in texts(at.error)
    assert not at.exception
    assert run_store.list_runs(db) == []
    assert current_title(at) == "New run"


def test_new_run_fractions_leaving_no_training_rows_are_refused(
    settings, db, demo_datasets
) -> None:
    at = open_page("views/new_run.py")
    at.number_input(key="nr_val_fraction").set_value(0.45)
    at.number_input(key="nr_test_fraction").set_value(0.45)
    button(at, "Start training").click().run()
    assert "Validation share + Test share must leave at least 20% of rows" in texts(at.error)
    assert run_store.list_runs(db) == []


def test_clone_prefills_the_form_and_links_the_parent(settings, db, demo_datasets) -> None:
    wine = find_dataset(db, "wine")
    source = submit_run(
        db,
        "wine",
        {"hidden_sizes": [8], "learning_rate": 0.05, "optimizer": "sgd", "epochs": 7},
        name="original",
    )
    at = open_page("views/new_run.py", clone=str(source))
    assert "Cloning run" in texts(at.info)
    assert at.selectbox(key="nr_dataset").value == wine.id
    assert at.text_input(key="nr_hidden_sizes").value == "8"
    assert at.number_input(key="nr_learning_rate").value == 0.05
    assert at.number_input(key="nr_epochs").value == 7
    assert at.selectbox(key="nr_optimizer").value == "sgd"
    button(at, "Start training").click().run()
    clone = run_store.list_runs(db)[0]
    assert clone.id != source and clone.parent_run_id == source
    assert clone.config == run_store.get_run(db, source).config


# ---------------------------------------------------------------- runs


def test_runs_page_empty_state_offers_a_demo_run(settings, db) -> None:
    at = open_page("views/runs.py")
    assert "No runs yet — train one on a demo dataset" in texts(at.info)
    button(at, "Train a model on a demo dataset").click().run()
    assert [r.status for r in run_store.list_runs(db)] == ["queued"]


def test_runs_page_lists_runs_and_filters_by_status(settings, db, demo_datasets) -> None:
    done = recorded_completed_run(settings, db)
    waiting = submit_run(db, "wine", {}, name="waiting")
    at = open_page("views/runs.py")
    table = at.dataframe[0].value
    assert list(table["id"]) == [waiting, done]
    assert [list(s) for s in table["status"]] == [["queued"], ["completed"]]
    assert "metric:test_accuracy" in table.columns
    assert table.set_index("id").loc[done, "metric:test_accuracy"] == pytest.approx(0.9333)
    assert table.set_index("id").loc[done, "open"] == f"run?run={done}"

    at.multiselect(key="rf_status").set_value(["completed"]).run()
    assert list(at.dataframe[0].value["id"]) == [done]
    at.multiselect(key="rf_status").set_value(["failed"]).run()
    assert "No runs match" in texts(at.info)

    wine = find_dataset(db, "wine")
    at.multiselect(key="rf_status").set_value([]).run()
    at.multiselect(key="rf_dataset").set_value([wine.id]).run()
    assert list(at.dataframe[0].value["id"]) == [waiting]


# ---------------------------------------------------------------- run detail


def test_completed_run_shows_cards_curves_evaluation_config_and_log(
    settings, db, demo_datasets
) -> None:
    run_id = recorded_completed_run(settings, db)
    at = open_page("views/run_detail.py", run=str(run_id))
    assert current_title(at) == f"#{run_id} · iris finished"
    assert ":green-badge[" in texts(at.markdown)

    cards = {m.label: m.value for m in at.metric}
    assert cards["accuracy"] == "93.3 %"  # "test " is said once, in the cards' caption
    assert at.metric[0].label == "accuracy"  # the headline metric comes first
    assert "F1 (macro)" in cards

    figures = plotly_figures(at)
    loss = figures[0]["data"]
    assert [t["name"] for t in loss] == ["train loss", "val loss"]
    assert loss[0]["x"] == [1, 2, 3]  # a run without an epoch series: its steps are epochs
    assert figures[0]["layout"]["xaxis"]["dtick"] == 1  # whole epochs, never "1.5"
    assert loss[0]["y"] == pytest.approx([1.0, 0.5, 1 / 3])
    quality = figures[1]["data"]
    assert quality[0]["name"] == "val accuracy"
    assert quality[0]["y"] == pytest.approx([0.6, 0.7, 0.8])
    assert not at.error

    # Only the open tab is drawn (?tab=…, Curves by default): each of the others in turn.
    at = open_tab(at, "Evaluation")
    heatmap = next(f["data"][0] for f in plotly_figures(at) if f["data"][0]["type"] == "heatmap")
    assert heatmap["z"] == [[8, 0, 0], [0, 6, 1], [0, 1, 7]]
    drawn = {t.get("name") for f in plotly_figures(at) for t in f["data"]}
    assert "train loss" not in drawn  # the curves are not drawn meanwhile
    at = open_tab(at, "Config")
    assert at.json[0].value and json.loads(at.json[0].value)["epochs"] == 3
    at = open_tab(at, "Logs")
    assert "run completed" in texts(at.code)
    at = open_tab(at, "Artifacts")
    # No artifact rows yet: the run folder's files are offered instead.
    assert [d.proto.label for d in at.get("download_button")].count("Download") == 2
    assert not at.error


def test_registered_artifacts_are_listed_with_download(settings, db, demo_datasets) -> None:
    run_id = recorded_completed_run(settings, db)
    checkpoint = settings.run_dir(run_id) / "checkpoint.pt"
    checkpoint.write_bytes(b"x" * 2048)
    artifact_writes.add_artifact(
        db, run_id, kind="checkpoint", path=str(checkpoint), size_bytes=2048, sha256="0" * 64
    )
    artifact_writes.add_artifact(
        db, run_id, kind="model", path="gone.pt", size_bytes=10, sha256="0" * 64
    )
    at = open_page("views/run_detail.py", run=str(run_id), tab="Artifacts")
    assert "checkpoint.pt" in texts(at.text) and "gone.pt" in texts(at.text)
    assert "2.0 KB" in texts(at.caption) and "file missing" in texts(at.caption)
    assert [d.proto.label for d in at.get("download_button")].count("Download") == 1


def test_failed_run_shows_its_error(settings, db, demo_datasets) -> None:
    run_id = submit_run(db, "iris", {}, name="doomed")
    run_writes.claim_next_run(db, "test-worker")
    message = "Loss became NaN at epoch 2; lower the learning rate (now 0.001)."
    run_writes.finish_run(db, run_id, "failed", error=message)
    at = open_page("views/run_detail.py", run=str(run_id))
    assert message in texts(at.error)
    assert ":red-badge[" in texts(at.markdown)
    assert not [b for b in at.button if b.label == "Cancel"]  # only active runs can be cancelled
    assert not at.metric


def test_cancel_queued_run(settings, db, demo_datasets) -> None:
    run_id = submit_run(db, "iris", {}, name="not needed")
    at = open_page("views/run_detail.py", run=str(run_id))
    assert "engine is not running" in texts(at.warning)
    button(at, "Cancel").click().run()
    assert not at.exception
    assert run_store.get_run(db, run_id).status == "cancelled"
    assert "Cancelled before it started" in texts(at.info)
    assert ":orange-badge[" in texts(at.markdown)


def test_cancel_running_run_sets_the_flag_and_the_note_goes_once_cancelled(
    settings, db, demo_datasets
) -> None:
    run_id = submit_run(db, "iris", {"epochs": 10}, name="long one")
    run_writes.claim_next_run(db, "test-worker")
    # Halfway through epoch 4: the points sit at optimizer steps, the epoch series beside them.
    now = time.time()
    metric_writes.append_metrics(
        db, run_id, [("train_loss", 14, 0.5, now), ("epoch", 14, 3.5, now)]
    )
    at = open_page("views/run_detail.py", run=str(run_id))
    progress = at.get("progress")[0].proto
    assert progress.text == "Epoch 4 of 10" and progress.value == 35  # follows the epochs
    button(at, "Cancel").click().run()
    run = run_store.get_run(db, run_id)
    assert run.status == "running" and run.cancel_requested
    assert "Cancel requested — the run stops within a few seconds." in texts(at.caption)
    # The runner stops: the page (rerun by its fragment when the status flips) drops the note.
    run_writes.finish_run(db, run_id, "cancelled")
    at.run()
    assert not at.exception
    page = texts([*at.caption, *at.info, *at.warning, *at.markdown])
    assert "Cancel requested" not in page and "Cancelled. Resume it" in page


def test_running_run_header_ticks_from_the_clock_and_progress_starts(
    settings, db, demo_datasets
) -> None:
    """The header's duration counts from the start, not from the last heartbeat, so each
    refresh of the header shows it grow; before the first point the bar says it is starting."""
    run_id = submit_run(db, "iris", {"epochs": 10}, name="ticking")
    run_writes.claim_next_run(db, "test-worker")
    with db.begin() as conn:  # started 95 s ago; its last heartbeat then too (a slow epoch)
        conn.execute(
            text("UPDATE runs SET started_at = :t, heartbeat_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(seconds=95), "id": run_id},
        )
    at = open_page("views/run_detail.py", run=str(run_id))
    header = texts(at.caption)
    assert "running for 1m 3" in header, header  # 1m 35s, give or take the test's own time
    assert at.get("progress")[0].proto.text.startswith("Starting")
    assert at.get("progress")[0].proto.value == 0


def test_an_active_run_without_points_has_its_loss_chart_waiting(
    settings, db, demo_datasets
) -> None:
    """Before the first point an active run's loss chart is there, empty, where the curve will
    be drawn (the browser loads Plotly while the run starts); a finished run without points
    says so in a sentence, with no empty chart."""
    run_id = submit_run(db, "iris", {"epochs": 3}, name="just queued")
    at = open_page("views/run_detail.py", run=str(run_id))
    (empty,) = plotly_figures(at)
    assert empty["data"] == [] and empty["layout"]["xaxis"]["range"] == [0, 1]
    assert "No curves yet" in texts(at.info)
    run_writes.request_cancel(db, run_id)
    at.run()
    assert not plotly_figures(at) and "No curves yet" in texts(at.info)


def test_clone_button_opens_the_prefilled_form(settings, db, demo_datasets) -> None:
    run_id = submit_run(db, "iris", {"epochs": 9}, name="to copy")
    at = open_page("views/run_detail.py", run=str(run_id))
    button(at, "Clone").click().run()
    assert current_title(at) == "New run"
    assert at.number_input(key="nr_epochs").value == 9


def test_run_page_without_a_run_offers_recent_runs(settings, db, demo_datasets) -> None:
    run_id = submit_run(db, "iris", {}, name="pick me")
    at = open_page("views/run_detail.py", run="999")
    assert "There is no run #999" in texts(at.warning)
    chooser = at.selectbox[0]
    assert chooser.options == [f"#{run_id} · pick me · queued"]
    chooser.set_value(run_id).run()
    assert current_title(at) == f"#{run_id} · pick me"


def test_user_names_are_shown_as_text_not_markup(settings, db, demo_datasets) -> None:
    run_id = submit_run(db, "iris", {}, name="**bold** [link](http://x) <b>")
    at = open_page("views/run_detail.py", run=str(run_id))
    title = current_title(at)
    assert r"\*\*bold\*\*" in title and r"\[link\]\(http" in title and r"\<b\>" in title


def test_page_files_are_not_in_a_pages_folder() -> None:
    """A dashboard/pages/ folder puts Streamlit in its legacy multipage mode: a deep link such
    as /run?run=7 then runs the page file without app.py (narrow layout, wrong sidebar). Found
    with a real browser; AppTest cannot see it."""
    assert not (ROOT / "dashboard" / "pages").exists()
    assert (ROOT / "dashboard" / "views" / "run_detail.py").is_file()


# ---------------------------------------------------------------- evaluation report


def run_with_real_report(settings, db, dataset: str, epochs: int = 5) -> int:  # noqa: ANN001
    """A completed run whose report.json comes from a real (small) model trained in-process."""
    from engine.data.stored import load_frame
    from engine.ml.device import choose_device
    from engine.ml.pipeline import evaluate_on_test, prepare_tabular
    from engine.ml.train import ListReporter, train

    run_id = submit_run(db, dataset, {"epochs": epochs}, name=f"{dataset} evaluated")
    run_writes.claim_next_run(db, "test-worker")
    record = find_dataset(db, dataset)
    config = RunConfig.model_validate(run_store.get_run(db, run_id).config)
    cpu = choose_device("cpu")
    prepared = prepare_tabular(load_frame(settings, record), record.schema, config, cpu)
    result = train(config, prepared.train_data, ListReporter(), cpu)
    report = evaluate_on_test(result.model, prepared, cpu)
    now = time.time()
    metric_writes.append_metrics(
        db, run_id, [(k, epochs, v, now) for k, v in report["metrics"].items()]
    )
    settings.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    (settings.run_dir(run_id) / "report.json").write_text(json.dumps(report))
    run_writes.finish_run(db, run_id, "completed")
    return run_id


def test_classification_report_section(settings, db, demo_datasets) -> None:
    run_id = run_with_real_report(settings, db, "wine", epochs=2)
    at = open_page("views/run_detail.py", run=str(run_id), tab="Evaluation")
    figures = plotly_figures(at)
    heatmap = next(f["data"][0] for f in figures if f["data"][0]["type"] == "heatmap")
    assert (
        sum(map(sum, heatmap["z"]))
        == json.loads((settings.run_dir(run_id) / "report.json").read_text())["n_test"]
    )
    names = [t.get("name", "") for f in figures for t in f["data"]]
    assert "chance" in names  # the ROC chart's diagonal
    assert any(n.startswith("class_0 (AUC") for n in names)
    assert any("(AP " in n for n in names)
    assert {"precision", "recall", "f1"} <= set(names)  # per-class bars
    report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
    if report["worst_mistakes"]:
        assert "Worst mistakes" in texts(at.markdown)
        shown = at.dataframe[-1].value
        assert shown["predicted"].tolist() == [m["predicted"] for m in report["worst_mistakes"]]
    tables = [d.value for d in at.dataframe]
    metric_table = tables[0]
    assert "test balanced accuracy" in metric_table["metric"].tolist()

    at.toggle(key="cm_normalize").set_value(True).run()
    assert not at.exception
    normalised = next(f["data"][0] for f in plotly_figures(at) if f["data"][0]["type"] == "heatmap")
    for row in normalised["z"]:
        assert sum(row) == pytest.approx(1.0) or sum(row) == 0


def test_regression_report_section(settings, db, demo_datasets) -> None:
    run_id = run_with_real_report(settings, db, "diabetes", epochs=3)
    at = open_page("views/run_detail.py", run=str(run_id), tab="Evaluation")
    names = [t.get("name", "") for f in plotly_figures(at) for t in f["data"]]
    assert "perfect" in names and names.count("test rows") == 2  # predicted-vs-actual, residuals
    assert "Largest errors" in texts(at.markdown)
    worst = at.dataframe[-1].value
    assert {"true", "predicted", "error", "input · bmi"} <= set(worst.columns)
    assert len(worst) == 20
