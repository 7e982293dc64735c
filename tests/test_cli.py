"""The `seedlab` CLI as a user runs it: errors are one line and a non-zero exit."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request

import pytest

from tests.support.commands import ROOT, child_env, cli, cli_process, free_port, seedlab_cmd
from tests.support.waiting import wait_until


@pytest.mark.slow  # `seedlab init` as its own program
def test_init_registers_demo_datasets(settings):
    result = cli_process("init")
    assert result.returncode == 0
    added = "Demo datasets added: iris, wine, breast_cancer, diabetes, support_tickets, digits"
    assert added in result.stdout
    again = cli("init")
    assert again.returncode == 0 and "Demo datasets added" not in again.stdout
    shown = cli("datasets", "show", "iris")
    assert "species" in shown.stdout and "numeric" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "submit", "--dataset", "nope"), "No dataset 'nope'. Datasets: iris"),
        (
            ("runs", "submit", "--dataset", "iris", "--set", "optimizer=rmsprop"),
            "optimizer must be one of 'adamw', 'adam' or 'sgd'; got 'rmsprop'",
        ),
        (
            ("runs", "submit", "--dataset", "diabetes", "--set", "epochs=0"),
            "epochs must be a whole number between 1 and 10,000; 0 is too small.",
        ),
        (
            ("runs", "submit", "--dataset", "iris", "--set", "task=regression"),
            "regression needs a numeric target",
        ),
        (("runs", "show", "999"), "No run 999."),
        (("runs", "cancel", "999"), "No run 999."),
        (("runs", "list", "--status", "done"), "--status must be one of queued, running"),
        (("datasets", "add", "/no/such/file.csv"), "No such file"),
    ],
)
def test_errors_are_one_line(settings, demo_datasets, args, message):
    result = cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_upload_from_cli_leaves_nothing(settings, tmp_path):
    bad = tmp_path / "one_class.csv"
    bad.write_text("a,t\n1,x\n2,x\n")
    result = cli("datasets", "add", str(bad), "--target", "t")
    assert result.returncode == 1 and "only one class" in result.stderr
    assert "No datasets yet" in cli("datasets", "list").stdout
    assert [p for p in settings.datasets_dir.iterdir()] == []


def test_submit_from_config_file_and_clone(settings, demo_datasets, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 3\noptimizer: sgd\nlearning_rate: 0.05\n")
    first = cli("runs", "submit", "--dataset", "iris", "--config", str(config), "--set", "epochs=4")
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip()
    cloned = cli("runs", "clone", run_id, "--set", "seed=3")
    assert cloned.returncode == 0, cloned.stderr
    import json

    shown = json.loads(cli("runs", "show", cloned.stdout.strip(), "--json").stdout)
    assert shown["config"]["optimizer"] == "sgd" and shown["config"]["epochs"] == 4
    assert shown["config"]["seed"] == 3 and shown["parent_run_id"] == int(run_id)
    assert shown["status"] == "queued"
    cancelled = cli("runs", "cancel", run_id)
    assert cancelled.returncode == 0 and f"Run {run_id} cancelled." in cancelled.stdout


def _health(port: int) -> str:
    """The dashboard's health route body, or "" while nothing answers on the port yet."""
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # `seedlab up`: the dashboard and a worker as processes
def test_up_serves_dashboard_and_ctrl_c_stops_everything(settings):
    port = free_port()
    proc = subprocess.Popen(
        seedlab_cmd("up", "--port", str(port)),
        env=child_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        body = wait_until(
            lambda: _health(port), timeout=90, what="the dashboard's health route", interval=0.5
        )
        assert body == "ok"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(timeout=40)
        wait_until(
            lambda: not _group_alive(proc.pid),
            timeout=10,
            what="every Seedlab process to exit after Ctrl-C",
        )
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
