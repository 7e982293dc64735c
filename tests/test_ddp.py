"""Data-parallel runs for real: a worker subprocess starts torchrun, which starts two runner
processes that train with PyTorch DDP over gloo on the CPU (ml/ddp.py,
execution/executors/torchrun.py).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from db import metrics as metric_store
from db import runs as run_store
from engine.core.run_files import checkpoint_path, log_path, resume_path
from engine.data.demo import demo_frames
from engine.execution.runner import PROCESS_FAILED
from engine.ml.checkpoints import saved_epoch
from engine.ml.predictor import Predictor
from engine.services.launch import submit_run
from tests.support.commands import cli
from tests.support.engine import epochs_of, start_worker, stop_worker
from tests.support.waiting import wait_until

# Data-parallel runs: torchrun starts one process per rank.
pytestmark = [pytest.mark.ddp, pytest.mark.slow]

# No dropout: then the only difference between one process on batches of 16 and two processes
# on 8 rows each of the same batches is the order of floating-point sums (DDP averages the two
# half-batch gradients, which is the full batch's mean), so the curves must agree closely.
IRIS = {"batch_size": 16, "dropout": 0.0, "early_stopping_patience": 0, "seed": 3}


def _series(db, run_id: int, key: str) -> metric_store.MetricSeries:  # noqa: ANN001
    return metric_store.metric_series(db, run_id, key)


def _finished(db, run_id: int) -> bool:  # noqa: ANN001
    return run_store.get_run(db, run_id).status not in ("queued", "running")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _rank_pid(launcher_pid: int, rank: int) -> int | None:
    """The pid of torchrun's child process with RANK=rank."""
    for pid in _children(launcher_pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return None


def test_two_processes_train_like_one_and_record_once(settings, db, demo_datasets):
    epochs = 12
    single = submit_run(db, "iris", {**IRIS, "epochs": epochs})
    parallel = submit_run(db, "iris", {**IRIS, "epochs": epochs, "processes": 2})
    proc = start_worker()
    try:
        wait_until(
            lambda: _finished(db, single) and _finished(db, parallel),
            timeout=120,
            what="both runs to finish",
        )
    finally:
        output = stop_worker(proc)
    runs = {run_id: run_store.get_run(db, run_id) for run_id in (single, parallel)}
    assert [r.status for r in runs.values()] == ["completed", "completed"], (
        runs[parallel].error,
        output,
    )

    log = log_path(settings, parallel).read_text()
    assert "process 0 of 2" in log and "process 1 of 2" in log  # both ranks trained
    assert log.count("test metrics:") == 1  # only rank 0 evaluates, reports and finishes
    for run_id in (single, parallel):  # every epoch, once
        assert epochs_of(db, run_id, "val_loss") == list(range(1, epochs + 1))
    # Same total batch, same rows per step: the curves match up to float summation order.
    for key in ("train_loss", "val_loss"):
        one, two = _series(db, single, key).values, _series(db, parallel, key).values
        np.testing.assert_allclose(two, one, rtol=1e-3, err_msg=key)
    assert runs[parallel].summary["test_accuracy"] == pytest.approx(
        runs[single].summary["test_accuracy"], abs=1e-9
    )

    # The checkpoint is an ordinary one (the unwrapped model's keys): it loads and predicts.
    frame, target = demo_frames()["iris"]
    predictor = Predictor.load(checkpoint_path(settings, parallel))
    predicted = predictor.predict(frame.drop(columns=[target]).head(30))
    assert isinstance(predicted, pd.DataFrame) and len(predicted) == 30
    assert (predicted["prediction"] == frame[target].head(30)).mean() > 0.8


def test_two_process_run_resumes_after_engine_restart(settings, db, demo_datasets):
    epochs = 5000  # never reached: stopped, resumed, then cancelled a few epochs later
    run_id = submit_run(db, "iris", {**IRIS, "epochs": epochs, "processes": 2})
    proc = start_worker()
    try:
        wait_until(
            lambda: len(_series(db, run_id, "train_loss").steps) >= 5,
            timeout=90,
            what="5 logged train_loss points",
        )
    finally:
        output = stop_worker(proc)
    stopped_at = time.time()
    stopped = run_store.get_run(db, run_id)
    # Back in the queue, not failed: the SIGTERM came from the engine, not from a failed rank.
    assert stopped.status == "queued" and stopped.attempts == 1, (stopped.error, output)
    # Metrics are flushed before each resume checkpoint is written, so a stop between the two
    # leaves one epoch stored but not checkpointed: that one is trained again.
    done_before = saved_epoch(resume_path(settings, run_id))
    stored = len(_series(db, run_id, "val_loss").steps)  # one a epoch
    assert done_before in (stored - 1, stored), (done_before, stored)

    proc = start_worker()
    try:
        wait_until(
            lambda: len(_series(db, run_id, "val_loss").steps) >= stored + 3,
            timeout=120,
            what="3 more epochs after the resume",
        )
        assert cli("runs", "cancel", str(run_id)).returncode == 0
        wait_until(lambda: _finished(db, run_id), timeout=30, what="the cancelled run to finish")
    finally:
        output = stop_worker(proc)
    final = run_store.get_run(db, run_id)
    assert final.status == "cancelled", (final.error, output)
    assert f"resuming after epoch {done_before}" in log_path(settings, run_id).read_text()
    series = _series(db, run_id, "val_loss")
    assert epochs_of(db, run_id, "val_loss") == list(range(1, len(series.steps) + 1))  # each once
    # The epochs before the stop were not trained (nor stored) again: resumed, not restarted.
    assert (series.wall_times[:done_before] < stopped_at).all()
    assert (series.wall_times[done_before:] > stopped_at).all()
    assert Predictor.load(checkpoint_path(settings, run_id)).kind == "tabular"


def test_a_killed_rank_fails_the_run_without_requeue(settings, db, demo_datasets):
    run_id = submit_run(db, "iris", {**IRIS, "epochs": 5000, "processes": 2})
    proc = start_worker()
    try:
        wait_until(
            lambda: len(_series(db, run_id, "train_loss").steps) >= 3,
            timeout=90,
            what="3 logged train_loss points",
        )
        launcher = run_store.get_run(db, run_id)
        torchrun_pid = next(p for p in _children(proc.pid) if _rank_pid(p, 1))
        # A genuine fault on one rank only: rank 1 dies as the OOM killer would kill it.
        os.kill(_rank_pid(torchrun_pid, 1), signal.SIGKILL)
        wait_until(lambda: _finished(db, run_id), timeout=60, what="the run to finish")
        # torchrun stops rank 0, prints its account and exits; the worker reaps it.
        wait_until(
            lambda: not Path(f"/proc/{torchrun_pid}").exists(),
            timeout=30,
            what="torchrun to exit",
        )
        assert proc.poll() is None  # the worker goes on
    finally:
        output = stop_worker(proc)
    final = run_store.get_run(db, run_id)
    assert final.status == "failed" and final.attempts == launcher.attempts == 0, output
    assert final.error == PROCESS_FAILED
    assert "SIGKILL" in log_path(settings, run_id).read_text()  # torchrun's account of it


def test_processes_is_set_from_the_cli_and_the_new_run_page(settings, db, demo_datasets):
    from engine.services.launch import find_dataset
    from tests.support.commands import cli
    from tests.support.pages import button, open_page, texts

    submitted = cli("runs", "submit", "--dataset", "iris", "--set", "processes=2")
    assert submitted.returncode == 0, submitted.stderr
    assert run_store.get_run(db, int(submitted.stdout)).config["processes"] == 2
    refused = cli("runs", "submit", "--dataset", "iris", "--set", "processes=0")
    assert refused.returncode != 0 and "processes" in refused.stdout + refused.stderr

    at = open_page("views/new_run.py", dataset=str(find_dataset(db, "wine").id))
    at.number_input(key="nr_processes").set_value(3)
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, texts(at.error)
    newest = max(run_store.list_runs(db), key=lambda r: r.id)
    assert newest.config["processes"] == 3
