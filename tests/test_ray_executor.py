"""The Ray executor for real: a Ray head on loopback (`seedlab cluster up`), a worker subprocess
with `--executor ray` that hands each claimed run to the cluster as a task.

The cluster is started once per module (about 10 s); `seedlab cluster down` runs `ray stop`,
which stops every Ray process of this machine, so these tests own Ray while they run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from db import runs as run_store
from db.metrics import metric_series
from engine.core.run_files import resume_path
from engine.ml.checkpoints import saved_epoch
from engine.services.launch import submit_run
from tests.support.commands import ROOT, child_env, cli, free_port, seedlab_cmd
from tests.support.engine import epochs_of, run_status, start_worker, stop_worker
from tests.support.waiting import wait_until

# A local Ray cluster (started once per module) and workers on it.
pytestmark = [pytest.mark.ray, pytest.mark.slow]

LONG = {"epochs": 5000, "batch_size": 8, "early_stopping_patience": 0}


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("ray_home")
    # Ray's session folder holds Unix sockets, whose paths must stay short (about 100 bytes).
    temp_dir = tempfile.mkdtemp(prefix="slray", dir="/tmp")
    env = {**child_env(), "SEEDLAB_HOME": str(home)}
    port = free_port()
    up = subprocess.run(
        seedlab_cmd("cluster", "up", "--port", str(port), "--cpus", "2", "--temp-dir", temp_dir),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert up.returncode == 0, up.stderr + up.stdout
    assert f"127.0.0.1:{port}" in up.stdout
    record = json.loads((home / "ray_cluster.json").read_text())
    try:
        yield record["address"]
    finally:
        subprocess.run(
            seedlab_cmd("cluster", "down"), env=env, cwd=ROOT, capture_output=True, timeout=120
        )
        shutil.rmtree(temp_dir, ignore_errors=True)


def _log(settings, run_id: int) -> str:  # noqa: ANN001
    path = settings.run_dir(run_id) / "run.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.backends("sqlite", "postgresql")
def test_a_run_trains_on_the_cluster_and_an_oversized_one_is_refused(
    settings, db, demo_datasets, ray_address
):
    worker = start_worker("--executor", "ray", "--address", ray_address)
    try:
        too_big = submit_run(db, "iris", {"epochs": 2, "cpus": 64})
        run_id = submit_run(db, "iris", {"epochs": 3})
        wait_until(
            lambda: run_status(db, run_id) in ("completed", "failed"),
            timeout=120,
            what="the run to finish on Ray",
        )
        run = run_store.get_run(db, run_id)
        assert run.status == "completed", run.error
        assert run.device.startswith("ray cpu") and "node 127.0.0.1" in run.device
        assert run.summary["val_accuracy"]["last"] > 0.5
        assert (settings.run_dir(run_id) / "model.pt").is_file()
        log = _log(settings, run_id)
        assert "ray task on node 127.0.0.1" in log and "test metrics" in log

        refused = run_store.get_run(db, too_big)
        assert refused.status == "failed"
        assert "64 CPU" in refused.error and "Lower `cpus`" in refused.error

        status = cli("engine", "status")
        assert "Ray cluster at" in status.stdout, status.stdout
    finally:
        output = stop_worker(worker)
    assert worker.returncode == 0, output


def test_cancel_kill_and_shutdown_on_the_cluster(settings, db, demo_datasets, ray_address):
    """The local executor's fault behaviour, on Ray: three runs share the 2-CPU cluster."""
    share = {"cpus": 0.5}  # all three fit at once
    worker = start_worker("--executor", "ray", "--address", ray_address)
    try:
        cancelled = submit_run(db, "breast_cancer", {**LONG, **share})
        killed = submit_run(db, "breast_cancer", {**LONG, **share})
        resumed = submit_run(db, "breast_cancer", {**LONG, **share})
        runs = [
            wait_until(
                lambda i=i: (r := run_store.get_run(db, i)).summary.get("train_loss") and r,
                what=f"run {i}'s first train_loss",
            )
            for i in (cancelled, killed, resumed)
        ]
        assert all(r.pid and r.pid != worker.pid for r in runs)

        assert cli("runs", "cancel", str(cancelled)).returncode == 0
        wait_until(
            lambda: run_status(db, cancelled) == "cancelled",
            timeout=15,
            what="the run to be cancelled",
        )
        assert (settings.run_dir(cancelled) / "model.pt").is_file()

        os.kill(runs[1].pid, signal.SIGKILL)  # the Ray worker process that trains the run
        wait_until(
            lambda: run_status(db, killed) == "failed", timeout=30, what="the killed run to fail"
        )
        error = run_store.get_run(db, killed).error
        assert "died on the Ray cluster" in error and "Last lines of its log" in error
        assert worker.poll() is None  # the engine is still up

        wait_until(
            lambda: (settings.run_dir(resumed) / "resume.pt").exists(),
            timeout=30,
            what="a resume checkpoint",
        )
    finally:
        output = stop_worker(worker)
    stopped_at = time.time()
    assert worker.returncode == 0, output
    stopped = run_store.get_run(db, resumed)
    assert stopped.status == "queued" and stopped.attempts == 1, stopped.error
    # Metrics are flushed before each resume checkpoint is written, so a stop between the two
    # leaves one epoch stored but not checkpointed: that one is trained again.
    done = saved_epoch(resume_path(settings, resumed))
    stored = len(metric_series(db, resumed, "val_loss").steps)  # one a epoch
    assert done in (stored - 1, stored), (done, stored)

    # The next engine resumes it after its last epoch; a few epochs more prove it, then a cancel
    # ends it (training all 5,000 epochs would prove nothing more).
    worker = start_worker("--executor", "ray", "--address", ray_address)
    try:
        wait_until(
            lambda: len(metric_series(db, resumed, "val_loss").steps) >= stored + 3,
            timeout=120,
            what="3 more epochs after the resume",
        )
        assert cli("runs", "cancel", str(resumed)).returncode == 0
        wait_until(
            lambda: run_status(db, resumed) == "cancelled",
            timeout=15,
            what="the resumed run to be cancelled",
        )
    finally:
        stop_worker(worker)
    assert f"resuming after epoch {done}" in _log(settings, resumed)
    series = metric_series(db, resumed, "val_loss")
    assert epochs_of(db, resumed, "val_loss") == list(range(1, len(series.steps) + 1))  # each once
    # Epochs before the stop were not trained (nor stored) again: resumed, not restarted.
    assert (series.wall_times[:done] < stopped_at).all()
    assert (series.wall_times[done:] > stopped_at).all()


def test_a_data_parallel_run_trains_with_ray_train(settings, db, demo_datasets, ray_address):
    """processes=2: Ray Train's TorchTrainer runs two gloo ranks; rank 0 reports."""
    worker = start_worker("--executor", "ray", "--address", ray_address)
    try:
        run_id = submit_run(db, "iris", {"epochs": 4, "processes": 2, "batch_size": 16})
        wait_until(
            lambda: run_status(db, run_id) in ("completed", "failed"),
            timeout=180,
            what="the run to finish",
        )
    finally:
        stop_worker(worker)
    run = run_store.get_run(db, run_id)
    assert run.status == "completed", run.error
    log = _log(settings, run_id)
    assert log.count("ray train worker on node 127.0.0.1") == 2
    assert "process 0 of 2" in log and "process 1 of 2" in log
    assert log.count("test metrics") == 1  # rank 0 alone evaluates and reports
    assert epochs_of(db, run_id, "val_loss") == [1, 2, 3, 4]
    assert (settings.run_dir(run_id) / "model.pt").is_file()


# A recipe (the team's own script, engine/execution/recipe_runner.py) on the cluster: it writes
# the SDK's spool lines itself and stops on the stop file, as `import seedlab` would.
RECIPE = """
import argparse, json, os, time
parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--pause", type=float, default=0.0)
args = parser.parse_args()
for step in range(args.steps):
    with open(os.environ["SEEDLAB_SPOOL"], "a") as fh:
        line = {"type": "metrics", "step": step, "values": {"val_loss": 1 / (step + 1)}}
        fh.write(json.dumps({**line, "time": time.time()}) + "\\n")
    if os.path.exists(os.environ["SEEDLAB_STOP_FILE"]):
        break
    time.sleep(args.pause)
"""


def test_a_recipe_run_completes_and_cancels_within_5_s_on_the_cluster(
    settings, db, ray_address, tmp_path
):
    from engine.services.permissions import cli_actor
    from engine.services.recipes import add_recipe, submit_recipe_run

    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "train.py").write_text(RECIPE)
    add_recipe(db, cli_actor(), tmp_path / "recipe", "toy")
    worker = start_worker("--executor", "ray", "--address", ray_address)
    try:
        done = submit_recipe_run(settings, db, cli_actor(), "toy", {"steps": 3})
        wait_until(
            lambda: run_status(db, done) not in ("queued", "running"),
            timeout=180,
            what="the recipe run to end on Ray",
        )
        run = run_store.get_run(db, done)
        assert run.status == "completed", run.error
        assert run.device.startswith("ray ") and run.source == "recipe"
        assert metric_series(db, done, "val_loss").values.tolist() == [1.0, 0.5, 1 / 3]
        slow = submit_recipe_run(settings, db, cli_actor(), "toy", {"steps": 10_000, "pause": 0.05})
        wait_until(
            lambda: len(metric_series(db, slow, "val_loss").steps),
            timeout=120,
            what="a point on Ray",
        )
        started = time.monotonic()
        assert cli("runs", "cancel", str(slow)).returncode == 0
        wait_until(
            lambda: run_status(db, slow) == "cancelled", timeout=30, what="the cancel to land"
        )
        assert time.monotonic() - started < 5
    finally:
        stop_worker(worker)
