"""The whole loop a new user walks through, with every real part: upload on the Datasets page →
launch from the New run form → a real worker subprocess trains it → the Run page, the Runs page
and the CLI show the result."""

from __future__ import annotations

import json
import subprocess

import pytest

from db import datasets as dataset_store
from db import runs as run_store
from tests.support.commands import ROOT, child_env, seedlab_cmd
from tests.support.engine import MESSY_CHURN_CSV, start_worker, stop_worker
from tests.support.pages import button, open_page, trace_values
from tests.support.waiting import wait_until

# A real worker trains what the pages launched.
pytestmark = pytest.mark.slow


def test_upload_launch_train_browse(settings, db):
    # 1. Upload a messy CSV (missing values, text categories, a free-text column).
    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(("customers.csv", MESSY_CHURN_CSV.encode(), "text/csv")).run()
    at.text_input[0].set_value("customers")
    target = at.selectbox[0]
    assert target.value is None  # no column is named like a target: the user chooses
    target.set_value("churn").run()
    button(at, "Add dataset").click().run()
    assert not at.error, [e.value for e in at.error]
    dataset = dataset_store.get_dataset_by_name(db, "customers")
    assert dataset is not None and dataset.task == "classification"

    # 2. Launch a run from the New run form, with the dataset preselected.
    at = open_page("views/new_run.py", dataset=str(dataset.id))
    at.number_input(key="nr_epochs").set_value(6)
    at.text_input(key="nr_run_name").set_value("from the browser")
    button(at, "Start training").click().run()
    assert not at.error, [e.value for e in at.error]
    run = run_store.list_runs(db)[0]
    assert run.name == "from the browser" and run.status == "queued"

    # 3. The engine trains it.
    worker = start_worker()
    try:
        wait_until(
            lambda: run_store.get_run(db, run.id).status in ("completed", "failed"),
            timeout=120,
            what="the run to finish",
        )
    finally:
        stop_worker(worker)
    finished = run_store.get_run(db, run.id)
    assert finished.status == "completed", finished.error
    accuracy = finished.last("test_accuracy")
    assert accuracy is not None and 0 <= accuracy <= 1

    # 4. Browse: the Run page shows the metrics and curves the engine wrote.
    at = open_page("views/run_detail.py", run=str(run.id))
    cards = {m.label: m.value for m in at.metric}
    assert cards["accuracy"] == f"{accuracy * 100:.1f} %"
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert {t["name"] for t in curves} >= {"train loss", "val loss"}
    by_name = {t["name"]: trace_values(t["x"]) for t in curves}
    assert by_name["val loss"] == [1, 2, 3, 4, 5, 6]  # one point per epoch, at its end
    # The training loss within epochs too: more points than epochs, on the epoch axis.
    train_x = by_name["train loss"]
    assert len(train_x) > 6 and train_x == sorted(train_x) and train_x[-1] == 6
    assert not at.error

    # ... the Runs page lists it, and the CLI reads the same numbers.
    at = open_page("views/runs.py")
    listed = at.dataframe[0].value
    assert "from the browser" in listed.to_string()
    shown = subprocess.run(
        seedlab_cmd("runs", "show", str(run.id), "--json"),
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(shown.stdout)["test_metrics"]["test_accuracy"] == accuracy
