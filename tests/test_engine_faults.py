"""Kills, cancels and restarts with real processes: no run keeps a false status, none loses
progress. Each test runs a real worker subprocess (tests/test_engine.py helpers) on tiny data."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from db import metrics as metric_store
from db import runs as run_store
from db import workers as worker_store
from db.writes import runs as run_writes
from engine.core.epochs import epochs_done
from engine.core.errors import SeedlabError
from engine.core.run_files import log_path, resume_path
from engine.execution.runner import LOSS_POINTS_PER_EPOCH
from engine.services.launch import submit_run
from engine.services.recovery import resume_run
from tests.support.commands import cli
from tests.support.engine import run_status, start_worker, stop_worker
from tests.support.pages import APP
from tests.support.waiting import wait_until

# Real worker subprocesses killed, restarted and cancelled mid-run.
pytestmark = pytest.mark.slow

# Long enough that a kill or a cancel lands mid-run: the tests act once 2 epochs are stored,
# and up to ~2 s pass before the runner stops (its 1 s flush shows the epochs late, then it
# notices a cancel or its dead worker at the next flush): ~20 epochs at this box's ~0.1 s, ~66
# on a box three times faster, and 78 are left. Short enough to finish after a resume; no
# early stop. (150 epochs cost ~25 s more per test on 2 loaded cores and proved nothing more.)
LONG = {"epochs": 80, "batch_size": 4, "hidden_sizes": [16], "early_stopping_patience": 0}


def _epochs_logged(db, run_id: int) -> int:
    return int(epochs_done(run_store.get_run(db, run_id).summary))


def _steps(db, run_id: int, key: str = "val_loss") -> list[int]:
    history = metric_store.metric_history(db, [run_id], keys=[key])
    return sorted(int(s) for s in history["step"])


def _assert_continuous(db, run_id: int, epochs: int) -> None:
    """Every point an uninterrupted run logs is there, each once, and nothing else: the points a
    killed or cancelled attempt logged after its checkpoint were replaced, not kept beside."""
    marks = metric_store.metric_history(db, [run_id], keys=["epoch"])
    per_epoch = int(marks[marks["value"] == 1.0]["step"].iloc[0])
    ends = [per_epoch * e for e in range(1, epochs + 1)]
    for key in ("val_loss", "lr"):
        assert _steps(db, run_id, key) == ends, key
    every = max(1, per_epoch // LOSS_POINTS_PER_EPOCH)
    within = [b for b in range(every, per_epoch, every)]  # offsets of the points within an epoch
    expected = {1, *ends, *(per_epoch * (e - 1) + b for e in range(1, epochs + 1) for b in within)}
    assert _steps(db, run_id, "train_loss") == sorted(expected)
    assert _steps(db, run_id, "epoch") == sorted(expected)
    assert marks["value"].tolist() == [step / per_epoch for step in sorted(expected)]


def test_sigkill_worker_then_restart_resumes_with_continuous_metrics(settings, db, demo_datasets):
    run_id = submit_run(db, "breast_cancer", LONG)
    first = start_worker()
    try:
        wait_until(lambda: _epochs_logged(db, run_id) >= 2, timeout=90, what="2 epochs logged")
        runner_pid = run_store.get_run(db, run_id).pid
        first.kill()  # SIGKILL: no shutdown code runs
        first.wait()
        # The orphaned runner sees its worker gone, requeues its run and exits.
        wait_until(
            lambda: run_status(db, run_id) == "queued", timeout=15, what="the run to be requeued"
        )
        wait_until(lambda: not _alive(runner_pid), timeout=15, what="the orphaned runner to exit")
        queued = run_store.get_run(db, run_id)
        assert queued.attempts == 1 and queued.worker_id is None
        checkpointed = _epochs_logged(db, run_id)
    finally:
        stop_worker(first)

    second = start_worker()
    try:
        wait_until(
            lambda: run_status(db, run_id) in ("completed", "failed"),
            timeout=120,
            what="the resumed run to finish",
        )
    finally:
        stop_worker(second)
    run = run_store.get_run(db, run_id)
    assert run.status == "completed", run.error
    assert run.attempts == 1 and checkpointed >= 2
    _assert_continuous(db, run_id, LONG["epochs"])
    assert "resuming after epoch" in log_path(settings, run_id).read_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_stops_the_run_cleanly_then_resume_from_cli(settings, db, demo_datasets, worker):
    run_id = submit_run(db, "breast_cancer", LONG)
    wait_until(lambda: _epochs_logged(db, run_id) >= 2, timeout=90, what="2 epochs logged")
    assert cli("runs", "cancel", str(run_id)).returncode == 0
    wait_until(
        lambda: run_status(db, run_id) == "cancelled",
        timeout=30,
        what="the run to be cancelled",
        interval=0.05,
    )
    # Stopped by the runner itself at its next check (checkpoint and resume file written), not
    # killed by the worker after CANCEL_GRACE_S. The latency (aim < 5 s) is measured by
    # bench/bench_engine.py, not asserted here: a wall clock on shared CI cores is no test.
    assert (settings.run_dir(run_id) / "model.pt").is_file()
    assert resume_path(settings, run_id).is_file()

    resumed = cli("runs", "resume", str(run_id))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumes after epoch" in resumed.stdout
    wait_until(
        lambda: run_status(db, run_id) in ("completed", "failed"),
        timeout=120,
        what="the run to finish",
    )
    run = run_store.get_run(db, run_id)
    assert run.status == "completed" and run.attempts == 1, run.error
    _assert_continuous(db, run_id, LONG["epochs"])
    with pytest.raises(SeedlabError, match="only a cancelled or failed run can be resumed"):
        resume_run(settings, db, run_id)


def test_four_parallel_runs_while_pages_read(settings, db, demo_datasets):
    ids = [submit_run(db, "iris", {"epochs": 15, "batch_size": 8}) for _ in range(4)]
    proc = start_worker("--max-concurrent", "4")
    errors: list[str] = []
    done = threading.Event()

    def read_pages() -> None:
        pages = [("views/engine.py", {}), ("views/runs.py", {})]
        pages += [("views/run_detail.py", {"run": str(i)}) for i in ids]
        while not done.is_set():
            for page, query in pages:
                at = AppTest.from_file(APP, default_timeout=30).run()
                at.switch_page(page)
                for k, v in query.items():
                    at.query_params[k] = v
                at.run()
                errors.extend(str(e.value) for e in at.exception)
                errors.extend(str(e.value) for e in at.error)

    def read_pages_safely() -> None:
        try:
            read_pages()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"page reader crashed: {exc!r}")

    reader = threading.Thread(target=read_pages_safely)
    reader.start()
    try:
        wait_until(
            lambda: len(run_store.active_run_ids(db)) == 4,
            timeout=60,
            what="4 running runs",
            interval=0.05,
        )
        wait_until(
            lambda: all(run_status(db, i) in ("completed", "failed") for i in ids),
            timeout=180,
            what="all runs to finish",
        )
    finally:
        done.set()
        reader.join(timeout=120)
        output = stop_worker(proc)
    assert [run_status(db, i) for i in ids] == ["completed"] * 4, [
        run_store.get_run(db, i).error for i in ids
    ]
    logs = output + "".join(log_path(settings, i).read_text() for i in ids)
    assert "database is locked" not in logs + "\n".join(errors)
    assert not errors, errors
    for run_id in ids:
        _assert_continuous(db, run_id, 15)


def test_nan_loss_run_fails_with_a_lower_learning_rate(settings, db, demo_datasets, worker):
    run_id = submit_run(
        db,
        "diabetes",
        {
            "optimizer": "sgd",
            "learning_rate": 10,
            "momentum": 0.99,
            "epochs": 20,
            "lr_schedule": "none",
            "task": "regression",
        },
    )
    # Meanwhile the Engine's view: a live worker that registered its devices.
    live = wait_until(
        lambda: worker_store.live_workers(db, within_s=15),
        timeout=30,
        what="a live worker row",
    )
    devices = live[0].devices
    assert devices and devices[0]["kind"] == "cpu" and devices[0]["name"].startswith("CPU")
    shown = cli("engine", "status")
    assert "alive" in shown.stdout and "device cpu" in shown.stdout, shown.stdout
    wait_until(
        lambda: run_status(db, run_id) in ("completed", "failed"),
        timeout=90,
        what="the run to finish",
    )
    run = run_store.get_run(db, run_id)
    assert run.status == "failed"
    assert "learning rate" in run.error and "too high: try 1" in run.error


def _claimed_by_dead_worker(db, run_id: int) -> None:
    run_writes.claim_next_run(db, "worker-that-was-killed")
    with db.begin() as conn:
        conn.execute(
            text("UPDATE runs SET heartbeat_at = '2020-01-01 00:00:00' WHERE id = :i"),
            {"i": run_id},
        )


def test_no_run_stays_running_when_no_worker_comes_back(settings, db, demo_datasets):
    from engine.ml.checkpoints import TrainState, save_train_state

    with_checkpoint = submit_run(db, "iris", {"epochs": 3})
    _claimed_by_dead_worker(db, with_checkpoint)
    without = submit_run(db, "iris", {"epochs": 3})
    _claimed_by_dead_worker(db, without)
    import torch

    state = TrainState(
        epoch=1,
        model={},
        optimizer={},
        scheduler=None,
        scaler=None,
        torch_rng=torch.get_rng_state(),
        cuda_rng=[],
        batch_order_rng=torch.get_rng_state(),
    )
    save_train_state(resume_path(settings, with_checkpoint), state)

    status = cli("engine", "status")  # no worker at all: a status check settles them
    assert status.returncode == 0, status.stderr
    assert "Engine not running" in status.stdout and "seedlab worker" in status.stdout
    assert run_status(db, with_checkpoint) == "queued"
    assert run_store.get_run(db, with_checkpoint).attempts == 1
    failed = run_store.get_run(db, without)
    assert failed.status == "failed" and "before its first checkpoint" in failed.error
    assert "requeued to resume after epoch 1" in log_path(settings, with_checkpoint).read_text()


def test_a_run_settled_first_is_not_called_failed_at_shutdown(settings, db, demo_datasets, caplog):
    """The runner stops at shutdown and tries to requeue a run that was cancelled meanwhile:
    it says so in the run's log (its stderr) and reports the run's real status."""
    from types import SimpleNamespace

    from engine.execution import runner

    run_id = submit_run(db, "iris", {"epochs": 1})
    assert run_writes.claim_next_run(db, "w") == run_id
    run = run_store.get_run(db, run_id)  # as the runner loaded it
    assert run_writes.request_cancel(db, run_id) == "running"
    assert run_writes.finish_run(db, run_id, "cancelled")
    with caplog.at_level("WARNING", logger="seedlab.runner"):
        status = runner._settle(
            settings, db, run, runner.EngineShutdown(), SimpleNamespace(active=False)
        )
    assert status == "cancelled"
    assert "engine stopping: run not requeued: it is already cancelled" in caplog.text
    assert run_store.get_run(db, run_id).status == "cancelled"
