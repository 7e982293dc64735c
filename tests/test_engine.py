"""The engine for real: a worker subprocess claims runs and trains each in its own process,
on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from db import artifacts as artifact_store
from db import datasets as dataset_store
from db import metrics as metric_store
from db import runs as run_store
from db.writes import runs as run_writes
from engine.execution import spare as spare_module
from engine.execution.spare import MAX_SPARE_FAILURES, SparePool
from engine.services.launch import submit_run
from engine.services.permissions import LOCAL_ADMIN
from engine.services.runs import queue_demo_run
from tests.support.commands import child_env, cli
from tests.support.engine import (
    MESSY_CHURN_CSV,
    run_status,
    start_worker,
    stop_worker,
    wait_for_worker_polls,
)
from tests.support.waiting import wait_until

# Every test starts a real worker subprocess, which spawns a runner per run.
pytestmark = [pytest.mark.backends("sqlite", "postgresql"), pytest.mark.slow]


def test_upload_submit_train_browse_via_cli(settings, db, tmp_path: Path, worker):
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(MESSY_CHURN_CSV)
    added = cli("datasets", "add", str(csv_path), "--name", "customers", "--target", "churn")
    assert added.returncode == 0, added.stderr
    assert "target 'churn' → classification" in added.stdout

    listed = json.loads(cli("datasets", "list", "--json").stdout)
    assert [d["name"] for d in listed] == ["customers"]
    # The free-text comment is a feature too: its words (engine/ml/prep/words.py).
    assert set(listed[0]["features"]) == {"tenure", "monthly_fee", "region", "contract", "comment"}

    submitted = cli(
        "runs",
        "submit",
        "--dataset",
        "customers",
        "--set",
        "epochs=8",
        "--set",
        "hidden_sizes=32,16",
        "--name",
        "first run",
    )
    assert submitted.returncode == 0, submitted.stderr
    run_id = int(submitted.stdout.strip())

    waited = cli("runs", "wait", str(run_id), "--timeout", "120")
    assert waited.returncode == 0, (
        waited.stdout,
        waited.stderr,
        cli("runs", "logs", str(run_id)).stdout,
    )
    assert f"Run {run_id} completed." in waited.stdout

    shown = json.loads(cli("runs", "show", str(run_id), "--json").stdout)
    assert shown["status"] == "completed" and shown["name"] == "first run"
    assert shown["config"]["hidden_sizes"] == [32, 16] and shown["device"] == "cpu"
    assert 0.0 <= shown["test_metrics"]["test_accuracy"] <= 1.0
    # Every point sits at its optimizer step; the `epoch` series says which epoch that is.
    assert shown["summary"]["epoch"]["last"] == 8
    assert shown["summary"]["val_loss"]["step"] == shown["summary"]["epoch"]["step"]
    assert 1 <= shown["summary"]["best_epoch"]["last"] <= 8  # restore_best_weights is on

    history = run_store.get_run(db, run_id)
    assert history.summary["train_loss"]["last"] < history.summary["train_loss"]["max"]
    kinds = {a.kind for a in artifact_store.list_artifacts(db, run_id)}
    # auto_choice: model=auto kept the hidden sizes set here and says so (no race).
    assert kinds == {"checkpoint", "report", "log", "code", "auto_choice"}
    run_dir = settings.run_dir(run_id)
    assert (run_dir / "model.pt").is_file()
    assert json.loads((run_dir / "report.json").read_text())["classes"] == ["no", "yes"]
    assert "test metrics" in (run_dir / "run.log").read_text()

    listing = cli("runs", "list", "--status", "completed")
    assert "first run" in listing.stdout and "test accuracy" in listing.stdout


@pytest.mark.backends("sqlite")  # process handling, the same on every backend
def test_failing_run_does_not_stop_the_worker(settings, db, demo_datasets, worker):
    broken = dataset_store.get_dataset_by_name(db, "wine")
    (settings.resolve(broken.path) / "data.parquet").unlink()
    bad = submit_run(db, "wine", {"epochs": 2})
    good = submit_run(db, "iris", {"epochs": 2})
    wait_until(
        lambda: run_status(db, good) in ("completed", "failed"),
        timeout=90,
        what="the good run to finish",
    )
    bad_run = run_store.get_run(db, bad)
    assert bad_run.status == "failed"
    assert "files of dataset 'wine' are missing" in bad_run.error
    assert run_status(db, good) == "completed"
    assert worker.poll() is None


def test_cancel_a_running_run(settings, db, demo_datasets, worker):
    run_id = submit_run(  # a named model: its first point comes without model=auto's race
        db,
        "breast_cancer",
        {"model": "mlp", "epochs": 5000, "batch_size": 8, "early_stopping_patience": 0},
    )
    wait_until(
        lambda: run_store.get_run(db, run_id).summary.get("train_loss"),
        timeout=60,
        what="the run's first train_loss",
    )
    result = cli("runs", "cancel", str(run_id))
    assert result.returncode == 0 and "Cancel requested" in result.stdout
    wait_until(
        lambda: run_status(db, run_id) == "cancelled", timeout=30, what="the run to be cancelled"
    )
    # The runner stopped itself (its checkpoint is written), not the worker's kill after
    # CANCEL_GRACE_S. How fast a cancel lands is measured in bench/bench_engine.py.
    assert (settings.run_dir(run_id) / "model.pt").is_file()
    assert cli("runs", "wait", str(run_id), "--timeout", "5").returncode == 1


@pytest.mark.backends("sqlite")  # process handling, the same on every backend
def test_killed_run_process_is_reported(settings, db, demo_datasets, worker):
    run_id = submit_run(
        db, "breast_cancer", {"epochs": 5000, "batch_size": 8, "early_stopping_patience": 0}
    )
    run = wait_until(
        lambda: (r := run_store.get_run(db, run_id)).summary.get("train_loss") and r,
        what="the run's first train_loss",
    )
    os.kill(run.pid, signal.SIGKILL)
    wait_until(lambda: run_status(db, run_id) == "failed", timeout=30, what="the run to fail")
    error = run_store.get_run(db, run_id).error
    assert "killed by SIGKILL" in error and "Last lines of its log" in error


@pytest.mark.backends("sqlite")  # process handling, the same on every backend
def test_worker_shutdown_stops_runs_cleanly(settings, db, demo_datasets):
    proc = start_worker()
    run_id = submit_run(
        db, "breast_cancer", {"epochs": 5000, "batch_size": 8, "early_stopping_patience": 0}
    )
    run = wait_until(
        lambda: (r := run_store.get_run(db, run_id)).summary.get("train_loss") and r,
        what="the run's first train_loss",
    )
    output = stop_worker(proc)
    assert proc.returncode == 0, output
    final = run_store.get_run(db, run_id)
    # Back in the queue (not failed): the next engine start resumes it from its checkpoint.
    assert final.status == "queued" and final.attempts == 1, final.error
    with pytest.raises(ProcessLookupError):
        os.kill(run.pid, 0)  # the run's process is gone: no orphans


# Process handling: settling stale runs is tested on both backends in tests/test_db.py.
@pytest.mark.backends("sqlite")
def test_stale_running_run_fails_when_a_worker_starts(settings, db, demo_datasets):
    run_id = submit_run(db, "iris", {"epochs": 2})
    run_writes.claim_next_run(db, "a-worker-that-died")
    with db.begin() as conn:
        conn.execute(
            text("UPDATE runs SET heartbeat_at = '2020-01-01 00:00:00' WHERE id = :i"),
            {"i": run_id},
        )
    proc = start_worker()
    try:
        wait_until(
            lambda: run_status(db, run_id) == "failed", timeout=30, what="the stale run to fail"
        )
    finally:
        stop_worker(proc)
    assert "engine stopped while the run was in progress" in run_store.get_run(db, run_id).error


# The worker's slot count; claiming runs from several processes at once is tested on both
# backends in tests/test_db.py and tests/test_db_concurrency.py, cancelling in the test above.
@pytest.mark.backends("sqlite")
def test_worker_respects_concurrency_cap(settings, db, demo_datasets):
    ids = [submit_run(db, "breast_cancer", {"epochs": 5000, "batch_size": 8}) for _ in range(3)]
    proc = start_worker("--max-concurrent", "2")
    try:
        wait_until(
            lambda: len(run_store.active_run_ids(db)) == 2, timeout=30, what="2 running runs"
        )
        wait_for_worker_polls(db, 3)  # polls that could have claimed the third run
        statuses = [run_status(db, i) for i in ids]
        assert statuses == ["running", "running", "queued"]  # oldest first, third waits
        for run_id in ids:
            run_writes.request_cancel(db, run_id)
        wait_until(
            lambda: all(run_status(db, i) == "cancelled" for i in ids),
            timeout=40,
            what="all 3 runs to be cancelled",
        )
    finally:
        stop_worker(proc)


def _ready_spare_pid(settings) -> int | None:  # noqa: ANN001
    """The pid of the worker's spare runner once it says it is ready (engine/execution/spare.py)."""
    path = settings.home / "spare-runner.log"
    found = re.search(rb"spare runner (\d+) ready", path.read_bytes()) if path.is_file() else None
    return int(found.group(1)) if found else None


@pytest.mark.backends("sqlite")  # process handling, the same on every backend
def test_demo_run_draws_its_curve_while_it_trains_on_the_warm_runner(settings, db):
    """The demo run (a few seconds of training) stores many training-loss points before it
    finishes, the first ones within its first epoch; it runs in the spare runner the worker
    started ahead, and a new spare (another process) waits once it is done."""
    proc = start_worker()
    try:
        spare = wait_until(lambda: _ready_spare_pid(settings), 120, what="a ready spare runner")
        run_id = queue_demo_run(settings, db, LOCAL_ADMIN)
        while_running: list[float] = []  # epochs of the train-loss points seen while it ran
        while (run := run_store.get_run(db, run_id)).status in ("queued", "running"):
            points = metric_store.metric_history(db, [run_id], ["epoch"])
            if run_status(db, run_id) == "running":  # read after: still running, so stored before
                while_running = points["value"].tolist()
            time.sleep(0.05)
        assert run.status == "completed", run.error
        assert run.pid == spare  # the warm runner ran it
        assert len(while_running) >= 5 and min(while_running) < 1, while_running
        losses = metric_store.metric_history(db, [run_id], ["train_loss"])
        assert len(losses) > 8 * 10  # about 20 a epoch beside the 8 epochs' own
        # One spare, one run: the next run gets a new process.
        wait_until(
            lambda: _ready_spare_pid(settings) not in (None, spare), 120, what="the next spare"
        )
    finally:
        output = stop_worker(proc)
    assert "warm runner" in output, output


def test_spare_runner_only_for_its_own_environment_and_off_after_repeated_deaths(
    tmp_path, monkeypatch, caplog
):
    """A spare started for one slot's environment is never handed a run that needs another
    (its device is fixed before CUDA starts); spares that die before they have a run are
    reported with their output, and after three in a row runs start cold."""
    pool = SparePool(tmp_path / "spare-runner.log")
    env = {**child_env(), "CUDA_VISIBLE_DEVICES": ""}
    pool.keep("cpu", env)
    waiting = pool.spare.process
    assert pool.take({**env, "CUDA_VISIBLE_DEVICES": "0"}, 7) is None  # another device: cold
    assert pool.spare is not None and pool.spare.process is waiting
    pool.stop()
    assert waiting.poll() is not None and pool.spare is None

    broken = [sys.executable, "-c", "print('broken install'); raise SystemExit(3)"]
    monkeypatch.setattr(spare_module, "spare_command", lambda: broken)
    with caplog.at_level(logging.WARNING, logger="seedlab.worker"):
        for _ in range(MAX_SPARE_FAILURES):
            pool.keep("cpu", env)
            pool.spare.process.wait(timeout=30)
        pool.keep("cpu", env)
    assert not pool.enabled and pool.spare is None
    assert "exited (code 3) before it had a run" in caplog.text and "broken install" in caplog.text
    assert "warm start is off" in caplog.text
