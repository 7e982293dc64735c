"""The CLI as a package: a small root, command modules that never reach back into it, one error
path, the worker's options defined once, and no heavy library at start-up."""

from __future__ import annotations

import ast
import subprocess
import sys

import typer
from typer.testing import CliRunner

from engine.cli.main import app
from engine.execution.worker_options import WorkerOptions, worker_command
from tests.support.commands import ROOT, child_env, seedlab_in_process

CLI = ROOT / "engine" / "cli"


def test_no_command_module_imports_the_root():
    offenders = []
    for path in CLI.glob("*.py"):
        if path.name == "main.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if "engine.cli.main" in names:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_errors_are_printed_in_one_place():
    """No command module catches SeedlabError only to print it: the root group does."""
    for path in CLI.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "except SeedlabError" not in source or path.name == "main.py", path.name
        assert "def _fail" not in source, path.name


def test_an_error_through_the_app_is_one_line(settings, demo_datasets):
    """Invoking `app` (not main()) gets the same one line: the root group prints it, with the
    exit status the command chose."""
    result = CliRunner().invoke(app, ["runs", "show", "999"])
    assert result.exit_code == 1 and result.stderr == "error: No run 999.\n"
    run_id = seedlab_in_process("runs", "submit", "--dataset", "iris").stdout.strip()
    waited = seedlab_in_process("runs", "wait", run_id, "--timeout", "0")
    assert waited.returncode == 3
    assert waited.stderr == f"error: Run {run_id} is still queued after 0 s.\n"


def test_runs_list_starts_without_torch(settings):
    code = (
        "import sys\n"
        "sys.argv = ['seedlab', 'runs', 'list']\n"
        "from engine.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'ray'})\n"
        "print('heavy:', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout


WORKER_OPTIONS = {
    "--max-concurrent",
    "--cpu-cap",
    "--gpu-cap",
    "--poll-interval",
    "--executor",
    "--address",
    "--warm-runner",  # and --no-warm-runner
}


def test_worker_options_are_the_same_for_seedlab_worker_and_the_module():
    worker = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    assert {opt for param in worker.params for opt in param.opts} == WORKER_OPTIONS
    # The module parses every one of them with the same definition: all accepted, and the
    # executor refused with the CLI's words (argparse would say "invalid choice").
    module = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.execution.worker",
            "--max-concurrent=2",
            "--cpu-cap=2",
            "--gpu-cap=1",
            "--poll-interval=0.1",
            "--address=auto",
            "--no-warm-runner",
            "--executor=dask",
        ],
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert module.returncode == 2 and "'dask': use local or ray" in module.stderr


def test_worker_options_fall_back_to_the_settings(monkeypatch):
    seen: list[WorkerOptions] = []
    one = typer.Typer()
    one.command()(worker_command(lambda _settings, options: seen.append(options)))
    monkeypatch.setenv("SEEDLAB_CPU_CAP", "3")
    monkeypatch.setenv("SEEDLAB_EXECUTOR", "ray")
    monkeypatch.delenv("SEEDLAB_GPU_CAP", raising=False)
    monkeypatch.delenv("SEEDLAB_RAY_ADDRESS", raising=False)
    assert CliRunner().invoke(one, []).exit_code == 0
    assert CliRunner().invoke(one, ["--cpu-cap", "2", "--executor", "local"]).exit_code == 0
    bad = CliRunner().invoke(one, ["--executor", "dask"])
    assert bad.exit_code == 2 and "use local or ray" in bad.output
    assert seen == [
        WorkerOptions(max_concurrent=3, gpu_cap=1, executor="ray", ray_address="auto"),
        WorkerOptions(max_concurrent=2, gpu_cap=1, executor="local", ray_address="auto"),
    ]
