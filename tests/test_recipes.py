"""Script runs ("recipes", issue 19): register a team's own script, launch it from the CLI and
the New run page, cancel it, sweep over its parameters, and clone the code a run ran.

The scripts here write the SDK protocol's spool lines (seedlab/_sinks.py) themselves (a
dozen lines of standard library), so these tests hold the engine's side to the protocol
whatever the SDK client does; examples/ (tested at the end) uses `import seedlab`. Real SQLite, a
real worker subprocess, real script subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from db import metrics as metric_store
from db import runs as run_store
from db.models import FINISHED_STATUSES
from engine.core.errors import ConfigError
from engine.core.recipe_params import params_from_argparse, params_from_yaml, resolve_values
from engine.services.permissions import Actor, PermissionDenied, cli_actor
from engine.services.recipes import RecipeError, add_recipe, recipe_info, submit_recipe_run
from tests.support.commands import seedlab_in_process
from tests.support.waiting import wait_until

# The protocol's spool writer, in the script's own few lines (what `import seedlab` does, less
# the batching thread): one JSON object a line, appended to SEEDLAB_SPOOL.
SPOOL_WRITER = """
import json, os, sys, time

def emit(line):
    with open(os.environ["SEEDLAB_SPOOL"], "a") as fh:
        fh.write(json.dumps({**line, "time": time.time()}) + "\\n")

def should_stop():
    return os.path.exists(os.environ["SEEDLAB_STOP_FILE"])
"""

TRAIN = (
    SPOOL_WRITER
    + """
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--pause", type=float, default=0.0)
parser.add_argument("--ignore-stop", action="store_true")
args = parser.parse_args()
print("params", os.environ["SEEDLAB_PARAMS"], "resumed", os.environ["SEEDLAB_RESUMED"])
print("dataset", os.environ.get("SEEDLAB_DATASET_PATH", "none"))
print("database url", os.environ.get("SEEDLAB_DB_URL", "none"))
emit({"type": "init", "project": None, "name": None, "config": vars(args), "dataset": None})
VERSION = 1
for step in range(args.steps):
    # A parabola with its minimum at lr = 0.3: a sweep should find it.
    emit({"type": "metrics", "step": step,
          "values": {"val_loss": (args.lr - 0.3) ** 2 + 1 / (step + 1), "version": VERSION}})
    if should_stop() and not args.ignore_stop:
        emit({"type": "finish", "status": "cancelled", "error": None, "traceback": None})
        sys.exit(0)
    time.sleep(args.pause)
emit({"type": "summary", "values": {"test_score": 1 - args.lr}})
"""
)


def _recipe_folder(root: Path, body: str = TRAIN, yaml_text: str | None = None) -> Path:
    folder = root / "recipe"
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(body)
    if yaml_text is not None:
        (folder / "seedlab.yaml").write_text(textwrap.dedent(yaml_text))
    return folder


def _values(db, run_id: int, key: str) -> list[float]:  # noqa: ANN001
    history = metric_store.metric_history(db, [run_id], [key])
    return [float(v) for v in history.sort_values("step")["value"]]


def _wait_final(db, run_id: int, timeout: float = 90):  # noqa: ANN001, ANN202
    return wait_until(
        lambda: (r := run_store.get_run(db, run_id)) and r.status in FINISHED_STATUSES and r,
        timeout=timeout,
        what=f"run {run_id} to end",
    )


# ---------------------------------------------------------------- registry and parameters


def test_argparse_options_are_read_without_running_the_script(tmp_path):
    source = "import torch_that_is_not_installed\n" + TRAIN  # never executed
    params = {p.name: p for p in params_from_argparse(source)}
    assert params["lr"].type == "float" and params["lr"].default == 0.1
    assert params["lr"].help == "learning rate"
    assert params["steps"].type == "int" and params["steps"].default == 5
    assert params["ignore-stop"].type == "bool" and params["ignore-stop"].default is False
    flags = params_from_argparse("p.add_argument('--no-aug', action='store_false', dest='aug')")
    assert flags[0].name == "no-aug" and flags[0].default is False  # passed only when chosen


def test_seedlab_yaml_wins_and_values_are_checked(tmp_path):
    spec = tmp_path / "seedlab.yaml"
    spec.write_text(
        "entry: fit.py\nparams:\n"
        "  lr: {type: float, default: 0.01, range: [0.0001, 1], help: step size}\n"
        "  opt: {type: str, default: adam, choices: [adam, sgd]}\n"
    )
    params, entry = params_from_yaml(spec)
    assert entry == "fit.py"
    assert resolve_values(params, {"lr": "0.5"}) == {"lr": 0.5, "opt": "adam"}
    with pytest.raises(ConfigError, match="outside its range"):
        resolve_values(params, {"lr": 3})
    with pytest.raises(ConfigError, match="not one of the choices: adam, sgd"):
        resolve_values(params, {"opt": "rmsprop"})
    with pytest.raises(ConfigError, match="Unknown recipe parameter 'lrr'; its parameters are"):
        resolve_values(params, {"lrr": 1})


def test_a_folder_holding_the_seedlab_home_is_refused(settings, db):
    (settings.home.parent / "train.py").write_text(TRAIN)
    with pytest.raises(RecipeError, match="holds Seedlab's home"):
        add_recipe(db, cli_actor(), settings.home.parent, "everything")


def test_only_an_admin_adds_or_removes_a_recipe(settings, db, tmp_path):
    folder = _recipe_folder(tmp_path)
    for role in ("viewer", "member"):
        with pytest.raises(PermissionDenied, match=f"Your role \\({role}\\) cannot register"):
            add_recipe(db, Actor("bob", role), folder, "mine")
    info = add_recipe(db, cli_actor(), folder, "mine")
    assert info.params_from == "argparse" and info.record.entry == "train.py"
    listed = seedlab_in_process("recipes", "list")
    assert listed.returncode == 0 and "mine" in listed.stdout
    shown = seedlab_in_process("recipes", "show", "mine")
    assert "--lr (float) = 0.1  — learning rate" in shown.stdout
    duplicate = seedlab_in_process("recipes", "add", str(folder), "--name", "mine")
    assert duplicate.returncode == 1 and "A recipe named 'mine' exists" in duplicate.stderr
    missing = seedlab_in_process("runs", "submit", "--recipe", "nope")
    assert "No recipe 'nope'. Recipes: mine." in missing.stderr
    neither = seedlab_in_process("runs", "submit", "--set", "epochs=2")
    assert "Give --dataset (a dataset name or id), or --recipe" in neither.stderr
    bad_python = seedlab_in_process(
        "recipes", "add", str(folder), "--name", "other", "--python", str(folder / "nope")
    )
    assert "is not an executable Python; give the venv's bin/python" in bad_python.stderr
    bad_value = seedlab_in_process("runs", "submit", "--recipe", "mine", "--set", "steps=many")
    assert bad_value.stderr.strip() == "error: steps = 'many' is not an int"
    removed = seedlab_in_process("recipes", "remove", "mine")
    assert removed.returncode == 0 and "its runs keep their code" in removed.stdout
    with pytest.raises(PermissionDenied):
        from engine.services.recipes import remove_recipe

        remove_recipe(db, Actor("bob", "member"), "mine")


# ---------------------------------------------------------------- running


@pytest.mark.slow
def test_cli_recipe_run_completes_with_its_metrics_and_clone_runs_its_snapshot(
    settings, db, demo_datasets, worker, tmp_path
):
    folder = _recipe_folder(tmp_path)
    assert seedlab_in_process("recipes", "add", str(folder), "--name", "toy").returncode == 0
    out = seedlab_in_process(
        "runs", "submit", "--recipe", "toy", "--set", "lr=0.2", "--set", "steps=4",
        "--dataset", "iris",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run_id = int(out.stdout.strip())
    run = _wait_final(db, run_id)
    assert run.status == "completed", run.error
    assert run.source == "recipe" and run.dataset_name == "iris"
    assert _values(db, run_id, "val_loss") == pytest.approx([0.01 + 1 / (s + 1) for s in range(4)])
    assert run.summary["test_score"]["last"] == pytest.approx(0.8)
    log = (settings.run_dir(run_id) / "run.log").read_text()
    assert 'params {"lr": 0.2, "steps": 4, "pause": 0.0, "ignore-stop": false}' in log
    assert f"dataset {settings.home}/datasets" in log and "data.parquet" in log
    assert "database url none" in log  # the script reports through the spool alone

    # Edit the recipe after run 1: the clone still runs run 1's code (version 1), a new run
    # of the recipe runs the edited one (version 2).
    (folder / "train.py").write_text(TRAIN.replace("VERSION = 1", "VERSION = 2"))
    clone = seedlab_in_process("runs", "clone", str(run_id), "--set", "steps=2")
    fresh = seedlab_in_process("runs", "submit", "--recipe", "toy", "--set", "steps=2")
    clone_id, fresh_id = int(clone.stdout), int(fresh.stdout)
    assert _wait_final(db, clone_id).status == "completed"
    assert _wait_final(db, fresh_id).status == "completed"
    assert _values(db, clone_id, "version") == [1.0, 1.0]
    assert _values(db, fresh_id, "version") == [2.0, 2.0]
    cloned = run_store.get_run(db, clone_id)
    assert cloned.parent_run_id == run_id and cloned.config["params"]["lr"] == 0.2


@pytest.mark.slow
def test_a_script_that_fails_fails_the_run_with_its_exit_code(settings, db, worker, tmp_path):
    folder = _recipe_folder(tmp_path, TRAIN + "\nraise SystemExit(3)\n")
    add_recipe(db, cli_actor(), folder, "broken")
    run_id = submit_recipe_run(settings, db, cli_actor(), "broken", {"steps": 1})
    run = _wait_final(db, run_id)
    assert run.status == "failed" and run.error.startswith("The script exited with code 3.")


@pytest.mark.slow
@pytest.mark.parametrize("ignore_stop", [False, True], ids=["honours-stop", "ignores-stop"])
def test_cancel_of_a_recipe_run_lands_within_5_s(settings, db, worker, tmp_path, ignore_stop):
    folder = _recipe_folder(tmp_path)
    add_recipe(db, cli_actor(), folder, "slow")
    values = {"steps": 10_000, "pause": 0.05, "ignore-stop": ignore_stop}
    run_id = submit_recipe_run(settings, db, cli_actor(), "slow", values)
    wait_until(lambda: _values(db, run_id, "val_loss"), timeout=90, what="the script's first point")
    started = time.monotonic()
    assert seedlab_in_process("runs", "cancel", str(run_id)).returncode == 0
    run = _wait_final(db, run_id, timeout=30)
    took = time.monotonic() - started
    assert run.status == "cancelled"
    assert took < 5, f"cancel took {took:.1f} s"


@pytest.mark.slow
def test_a_sweep_over_a_recipe_finds_the_best_trial(settings, db, worker, tmp_path):
    from db import sweeps as sweep_store
    from engine.services.sweeps import submit_recipe_sweep

    folder = _recipe_folder(tmp_path)
    add_recipe(db, cli_actor(), folder, "parabola")
    sweep_id = submit_recipe_sweep(
        settings,
        db,
        "parabola",
        {
            "space": {"lr": [0.1, 0.3, 0.6]},
            "sampler": "grid",
            "pruner": "none",
            "objective": "val_loss",
            "parallelism": 1,
        },
        base={"steps": 3},
        owner="cli:test",
    )
    # Edited once the sweep began: its trials still run the code it began with (version 1).
    (folder / "train.py").write_text(TRAIN.replace("VERSION = 1", "VERSION = 2"))
    sweep = wait_until(
        lambda: (s := sweep_store.get_sweep(db, sweep_id)) and s.status != "running" and s,
        timeout=180,
        what=f"sweep {sweep_id} to end",
    )
    assert sweep.status == "completed", sweep.error
    best = run_store.get_run(db, sweep.best_run_id)
    assert best.source == "recipe" and best.config["params"]["lr"] == 0.3
    trials = run_store.list_runs(db)
    assert len(trials) == 3
    assert all(_values(db, t.id, "version") == [1.0] * 3 for t in trials)


def test_recipe_info_reads_the_folder_as_it_is_now(settings, db, tmp_path):
    folder = _recipe_folder(tmp_path)
    add_recipe(db, cli_actor(), folder, "live")
    (folder / "seedlab.yaml").write_text("params:\n  lr: {type: float, default: 0.3}\n")
    info = recipe_info(db, "live")
    assert info.params_from == "seedlab.yaml" and [p.name for p in info.params] == ["lr"]
    assert json.loads(json.dumps(info.to_dict(), default=str))["params"][0]["default"] == 0.3


# ---------------------------------------------------------------- the New run page


@pytest.mark.slow
def test_a_recipe_run_from_the_new_run_page_completes_with_its_metrics(
    settings, db, demo_datasets, worker, tmp_path
):
    from tests.support.pages import button, open_page

    folder = _recipe_folder(
        tmp_path,
        yaml_text="""
        params:
          lr: {type: float, default: 0.1, range: [0.0, 1.0], help: learning rate}
          steps: {type: int, default: 3, range: [1, 100]}
          pause: {type: float, default: 0.0}
          ignore-stop: {type: bool, default: false}
        """,
    )
    add_recipe(db, cli_actor(), folder, "toy")
    at = open_page("views/new_run.py")
    at.radio(key="_nr_mode").set_value("Recipe (your script)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "parameters from seedlab.yaml" in "\n".join(c.value for c in at.caption)
    at.number_input(key="nr_recipe_param_lr").set_value(0.3)
    at.number_input(key="nr_recipe_param_steps").set_value(2)
    at.selectbox(key="nr_recipe_dataset").set_value("iris")
    button(at, "Start run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    (listed,) = run_store.list_runs(db)
    run = _wait_final(db, listed.id)
    assert run.status == "completed", run.error
    assert run.source == "recipe" and run.dataset_name == "iris"
    assert run.config["params"]["lr"] == 0.3 and run.config["params"]["steps"] == 2
    assert _values(db, run.id, "val_loss") == pytest.approx([1.0, 0.5])


# ---------------------------------------------------------------- examples/, with the real SDK

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_the_pytorch_example_trains_logs_resumes_and_keeps_its_model(
    settings, db, demo_datasets, worker
):
    add_recipe(db, cli_actor(), EXAMPLES / "pytorch_recipe", "residual-mlp")
    info = recipe_info(db, "residual-mlp")
    assert info.params_from == "seedlab.yaml"
    assert {p.name for p in info.params} >= {"lr", "epochs", "hidden", "blocks", "activation"}
    run_id = submit_recipe_run(
        settings, db, cli_actor(), "residual-mlp", {"epochs": 400, "lr": 0.01}, dataset="iris"
    )
    wait_until(lambda: len(_values(db, run_id, "val_accuracy")) >= 3, what="3 epochs logged")
    assert seedlab_in_process("runs", "cancel", str(run_id)).returncode == 0
    assert _wait_final(db, run_id, timeout=30).status == "cancelled"
    done = len(_values(db, run_id, "val_accuracy"))
    assert (settings.run_dir(run_id) / "checkpoints" / "last.pt").is_file()

    # Resume: the same run, the script told SEEDLAB_RESUMED=1, its checkpoint folder kept.
    resumed = seedlab_in_process("runs", "resume", str(run_id))
    assert "starts again with SEEDLAB_RESUMED=1" in resumed.stdout, resumed.stderr
    wait_until(
        lambda: "resumed after epoch" in (settings.run_dir(run_id) / "run.log").read_text(),
        timeout=90,
        what="the script to resume from its checkpoint",
    )
    assert seedlab_in_process("runs", "cancel", str(run_id)).returncode == 0
    run = _wait_final(db, run_id, timeout=30)
    assert run.status == "cancelled" and run.attempts == 1
    steps = metric_store.metric_history(db, [run_id], ["val_accuracy"])["step"].tolist()
    assert len(steps) >= done and steps == sorted(set(steps))  # went on, no step repeated
    assert (settings.run_dir(run_id) / "artifacts" / "model.pt").is_file()


@pytest.mark.slow
def test_the_sklearn_example_runs_from_the_cli_and_a_cli_sweep_searches_it(
    settings, db, demo_datasets, worker
):
    from db import sweeps as sweep_store

    add = seedlab_in_process("recipes", "add", str(EXAMPLES / "sklearn_recipe"), "--name", "gbm")
    assert "parameters (from argparse)" in add.stdout, add.stderr
    assert "--max_depth (int one of 1, 2, 3, 4, 5, 6) = 3" in add.stdout
    out = seedlab_in_process(
        "runs", "submit", "--recipe", "gbm", "--set", "n_estimators=20", "--dataset", "iris"
    )
    run = _wait_final(db, int(out.stdout))
    assert run.status == "completed", run.error
    assert run.summary["test_accuracy"]["last"] > 0.8
    assert len(_values(db, run.id, "val_accuracy")) == 3  # stages 0, 10 and 19

    sweep = seedlab_in_process(
        "sweeps", "submit", "--recipe", "gbm", "--param", "max_depth=1,3",
        "--set", "n_estimators=20", "--sampler", "grid", "--pruner", "none",
        "--objective", "val_accuracy",
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    record = wait_until(
        lambda: (s := sweep_store.get_sweep(db, int(sweep.stdout))) and s.status != "running" and s,
        timeout=180,
        what="the sklearn sweep to end",
    )
    assert record.status == "completed" and record.direction == "maximize"
    assert record.best_run_id is not None and record.dataset_id is None


def test_every_page_shows_recipe_runs_and_sweeps(settings, db, demo_datasets, tmp_path):
    """Pages with a finished recipe run (its metrics written as the runner writes them) and a
    recipe sweep: nothing assumes a built-in config, and the Run page offers Resume, not the
    Playground."""
    from db.writes import runs as run_writes
    from engine.services.sweeps import submit_recipe_sweep
    from tests.support.pages import go, open_page, texts

    add_recipe(db, cli_actor(), _recipe_folder(tmp_path), "toy")
    run_id = submit_recipe_run(settings, db, cli_actor(), "toy", {"lr": 0.2}, dataset="iris")
    run_writes.claim_next_run(db, "w")
    run_writes.record_progress(
        db, run_id, [("val_loss", s, 1 / (s + 1), time.time()) for s in range(3)]
    )
    run_writes.finish_run(db, run_id, "cancelled")
    sweep_id = submit_recipe_sweep(
        settings, db, "toy", {"space": {"lr": [0.1, 0.2]}}, owner="cli:x"
    )

    at = open_page("views/run_detail.py", run=str(run_id))
    page = texts(at.markdown) + texts(at.caption)
    assert "recipe toy" in page
    assert [b for b in at.button if b.label == "Resume"]
    assert not [p for p in at.get("page_link") if "Try it" in str(p.proto.label)]
    for view, query in [
        ("views/runs.py", {}),
        ("views/compare.py", {"runs": str(run_id)}),
        ("views/sweeps.py", {}),
        ("views/sweeps.py", {"sweep": str(sweep_id)}),
        ("views/home.py", {}),
        ("views/engine.py", {}),
        ("views/new_run.py", {"clone": str(run_id)}),
    ]:
        go(at, view, **query)
        if query.get("sweep"):
            assert "recipe toy" in texts(at.markdown)
    assert "Run #1's own code, as it ran then." in texts(at.caption)


@pytest.mark.slow
def test_an_engine_shutdown_requeues_a_recipe_run_and_the_next_engine_resumes_it(
    settings, db, tmp_path
):
    from tests.support.engine import start_worker, stop_worker

    add_recipe(db, cli_actor(), _recipe_folder(tmp_path), "long")
    worker = start_worker()
    run_id = submit_recipe_run(settings, db, cli_actor(), "long", {"steps": 40, "pause": 0.1})
    try:
        wait_until(lambda: _values(db, run_id, "val_loss"), timeout=60, what="a first point")
    finally:
        stop_worker(worker)
    run = run_store.get_run(db, run_id)
    assert run.status == "queued" and run.attempts == 1
    worker = start_worker()
    try:
        run = _wait_final(db, run_id)
    finally:
        stop_worker(worker)
    assert run.status == "completed", run.error
    log = (settings.run_dir(run_id) / "run.log").read_text()
    assert "resumed 0" in log and "resumed 1" in log  # SEEDLAB_RESUMED on each attempt


@pytest.mark.slow
def test_the_notebook_snippet_logs_a_run_of_its_own(settings, db):
    import subprocess
    import sys

    from tests.support.commands import child_env

    env = {**child_env(), "SEEDLAB_SERVER": f"{sys.executable} -m engine.cli.main"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "notebook_snippet.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (run,) = run_store.list_runs(db)
    assert done.stdout.strip() == f"logged run {run.id}"
    assert run.status == "completed" and run.source == "sdk" and run.name == "quick-try"
    assert len(_values(db, run.id, "train_loss")) == 200
    assert "test_accuracy" in run.summary


@pytest.mark.slow
def test_a_script_does_not_outlive_its_supervisor_killed_hard(settings, db, worker, tmp_path):
    """SIGKILL of the process that supervises a recipe run (no chance to stop its script):
    the script is ended with it, not left training with nobody reading its spool."""
    body = TRAIN.replace(
        "args = parser.parse_args()\n",
        "args = parser.parse_args()\nopen('script.pid', 'w').write(str(os.getpid()))\n",
    )
    folder = _recipe_folder(tmp_path, body)
    add_recipe(db, cli_actor(), folder, "orphan")
    values = {"steps": 10_000, "pause": 0.05}
    run_id = submit_recipe_run(settings, db, cli_actor(), "orphan", values)
    wait_until(lambda: _values(db, run_id, "val_loss"), timeout=90, what="the script's first point")
    script_pid = int(next(settings.home.rglob("script.pid")).read_text())
    assert run_store.get_run(db, run_id).pid == script_pid
    supervisor = int(Path(f"/proc/{script_pid}/stat").read_text().split()[3])  # its parent
    assert supervisor != worker.pid
    os.kill(supervisor, signal.SIGKILL)

    def gone() -> bool:
        try:
            os.kill(script_pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie until whoever adopted it reaps it: stopped all the same
            return Path(f"/proc/{script_pid}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    wait_until(gone, timeout=15, what="the script to end with its supervisor")
