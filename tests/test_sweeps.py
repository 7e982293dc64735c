"""Sweeps for real: search spaces, Optuna samplers and pruning through a worker subprocess."""

from __future__ import annotations

import json
import logging
import sqlite3
import time

import pytest

from db import datasets as dataset_store
from db import runs as run_store
from db import session as db_session
from db import sweeps as sweep_store
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from engine.cli.sweeps import parse_param
from engine.core.errors import ConfigError
from engine.services import sweeps
from engine.services.launch import submit_run
from tests.support.commands import cli
from tests.support.engine import start_worker, stop_worker, wait_for_worker_polls
from tests.support.pages import button, open_page, plotly_figures, texts
from tests.support.waiting import wait_until


def _sweep_done(db, sweep_id: int, timeout: float = 240) -> sweeps.SweepRecord:  # noqa: ANN001
    return wait_until(
        lambda: (s := sweep_store.get_sweep(db, sweep_id)).status != "running" and s,
        timeout=timeout,
        what=f"sweep {sweep_id} to finish",
        interval=0.5,
    )


# ---------------------------------------------------------------- spaces (no engine)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": {"low": 0.1, "high": 1}}, "'lr' is not a RunConfig field"),
        ({"learning_rate": {"low": 0.1, "high": 0.01}}, "learning_rate: low .* must be below"),
        ({"learning_rate": {"low": 0, "high": 0.1, "log": True}}, "log range needs low > 0"),
        ({"learning_rate": {"low": 1e-3, "high": 20}}, "learning_rate = 20.0 is not valid"),
        ({"activation": {"low": 1, "high": 2}}, "activation takes a list of choices"),
        ({"optimizer": ["adamw", "lion"]}, "optimizer = 'lion' is not valid"),
        ({"test_fraction": [0.1, 0.2]}, "test_fraction cannot be searched"),
        ({}, "give at least one field"),
    ],
)
def test_invalid_spaces_name_the_field(space, message):
    with pytest.raises(ConfigError, match=message):
        sweeps.parse_space(space, {})


def test_grid_points_and_cli_param_syntax():
    name, spec = parse_param("learning_rate=1e-4..1e-2:log")
    assert name == "learning_rate" and spec == {"low": 1e-4, "high": 1e-2, "log": True}
    assert parse_param("batch_size=16..64:step=16")[1] == {"low": 16, "high": 64, "step": 16.0}
    assert parse_param("hidden_sizes=32|64,32")[1] == {"choices": [32, "64,32"]}
    hidden = sweeps.parse_space({"hidden_sizes": [32, [64, 32], "16"]}, {})["hidden_sizes"]
    assert hidden.choices == ["32", "64,32", "16"]
    space = sweeps.parse_space(
        {"batch_size": {"low": 16, "high": 64, "step": 16}, "activation": ["relu", "gelu"]}, {}
    )
    points = sweeps.grid_points(space)
    assert len(points) == 8 and points[0] == {"batch_size": 16, "activation": "relu"}
    with pytest.raises(ConfigError, match="a grid needs choices or a range with a step"):
        sweeps.grid_points(sweeps.parse_space({"dropout": {"low": 0, "high": 0.5}}, {}))


def test_objective_must_fit_the_task(db, demo_datasets):
    with pytest.raises(ConfigError, match="objective: val_accuracy is not measured for regression"):
        sweeps.submit_sweep(
            db, "diabetes", {"space": {"dropout": [0, 0.1]}, "objective": "val_accuracy"}
        )


def test_a_locked_database_leaves_the_sweep_for_the_next_pass(
    settings, db, demo_datasets, monkeypatch, caplog
):
    """ "database is locked" past the busy timeout is the database's state, not the sweep's:
    the sweep stays running and launches its trial once the lock is gone."""
    sweep_id = sweeps.submit_sweep(
        db, "iris", {"space": {"dropout": [0, 0.1]}, "sampler": "grid", "max_trials": 2}
    )
    # An engine that gives up on a lock after 0.2 s instead of 10 s (the pragma is read per
    # connection); a second, real connection holds SQLite's write lock meanwhile.
    pragmas = tuple(
        "busy_timeout=200" if p.startswith("busy_timeout") else p for p in db_session.SQLITE_PRAGMAS
    )
    monkeypatch.setattr(db_session, "SQLITE_PRAGMAS", pragmas)
    impatient = db_session.make_engine(settings.db_url)
    holder = sqlite3.connect(settings.home / "seedlab.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with caplog.at_level(logging.WARNING, logger="seedlab.sweeps"):
            sweeps.advance_all(impatient, min_interval_s=0)
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert "database is locked" in caplog.text and "retried on the next pass" in caplog.text
    sweep = sweep_store.get_sweep(db, sweep_id)
    assert sweep.status == "running" and sweep.error is None
    assert sweep_store.trial_run_ids(db, sweep_id) == []
    sweeps.advance_all(impatient, min_interval_s=0)
    impatient.dispose()
    assert len(sweep_store.trial_run_ids(db, sweep_id)) == 1  # parallelism 1: one at a time


# ---------------------------------------------------------------- through the worker


@pytest.mark.slow  # real workers train every trial
def test_grid_and_tpe_sweeps_find_and_launch_the_best(settings, db, demo_datasets):
    grid = cli(
        "sweeps", "submit", "--dataset", "iris", "--sampler", "grid",
        "--param", "learning_rate=0.0005,0.02", "--param", "hidden_sizes=8|64,32",
        "--objective", "val_accuracy", "--parallel", "4", "--set", "epochs=6",
    )  # fmt: skip
    assert grid.returncode == 0, grid.stderr
    grid_id = int(grid.stdout)
    tpe_id = sweeps.submit_sweep(
        db,
        "iris",
        {
            "space": {"learning_rate": {"low": 1e-4, "high": 5e-2, "log": True}},
            "sampler": "tpe",
            "pruner": "none",
            "objective": "val_loss",
            "max_trials": 3,
            "parallelism": 2,
        },
        base={"epochs": 5},
    )
    # Four trials at once write to the same SQLite file as the worker: no lock errors.
    worker = start_worker("--max-concurrent", "4")
    try:
        grid_sweep = _sweep_done(db, grid_id)
        tpe_sweep = _sweep_done(db, tpe_id)
    finally:
        log = stop_worker(worker)
    assert grid_sweep.status == "completed", (grid_sweep.error, log[-2000:])
    assert tpe_sweep.status == "completed", (tpe_sweep.error, log[-2000:])

    shown = json.loads(cli("sweeps", "show", str(grid_id), "--json").stdout)
    trials = shown["trials"]
    assert len(trials) == 4 and all(t["state"] == "complete" for t in trials)
    assert {(t["params"]["learning_rate"], t["params"]["hidden_sizes"]) for t in trials} == {
        (0.0005, "8"), (0.0005, "64,32"), (0.02, "8"), (0.02, "64,32"),
    }  # fmt: skip
    best = max(trials, key=lambda t: t["value"])
    assert [t["run_id"] for t in trials if t["best"]] == [best["run_id"]]
    assert grid_sweep.best_run_id == best["run_id"]
    # Each trial is an ordinary run, judged on its objective.
    run = run_store.get_run(db, best["run_id"])
    assert run.sweep_id == grid_id and run.config["monitor"] == "val_accuracy"
    assert f"sweep-{grid_id}" in run.tags

    tpe_trials = sweeps.load_trials(db, tpe_sweep)
    assert len(tpe_trials) == 3
    assert len({t.params["learning_rate"] for t in tpe_trials}) == 3  # three different proposals
    assert tpe_sweep.best_run_id == min(tpe_trials, key=lambda t: t.value).run.id
    # People read sampled values to 3 significant digits; the JSON keeps them whole.
    text = cli("sweeps", "show", str(tpe_id)).stdout
    for t in tpe_trials:
        rate = t.params["learning_rate"]
        assert f"learning_rate={rate:.3g}" in text
        assert repr(rate) == f"{rate:.3g}" or repr(rate) not in text

    launched = cli("sweeps", "best", str(grid_id), "--launch", "--set", "epochs=9")
    assert launched.returncode == 0, launched.stderr
    full = run_store.get_run(db, int(launched.stdout))
    assert full.status == "queued" and full.sweep_id is None and full.config["epochs"] == 9
    assert full.config["learning_rate"] == best["params"]["learning_rate"]


def test_pruning_stops_a_bad_trial_early(settings, db, demo_datasets):
    """The worker's sweep step on real trial runs: two finished trials learned well; a running
    one is far behind them at the same epoch, so the median pruner stops it (training on a
    shared CI machine is too slow to race a live trial against the pruner reliably; the
    runner's reaction to the cancel flag is tested in test_engine)."""
    sweep_id = sweeps.submit_sweep(
        db,
        "iris",
        {
            "space": {"learning_rate": [0.05, 0.03, 1e-7]},
            "sampler": "grid",
            "pruner": "median",
            "objective": "val_accuracy",
            "parallelism": 1,
        },
    )
    _finished_trial(db, sweep_id, 0.05, [0.6, 0.8, 0.9, 0.95])
    _finished_trial(db, sweep_id, 0.03, [0.5, 0.7, 0.85, 0.9])
    bad = submit_run(
        db, "iris", {"learning_rate": 1e-7, "monitor": "val_accuracy"}, sweep_id=sweep_id
    )
    run_writes.claim_next_run(db, "test-worker")
    metric_writes.append_metrics(db, bad, _epoch_points([0.3], 10))
    sweeps.advance(db, sweep_store.get_sweep(db, sweep_id))
    assert not run_store.get_run(db, bad).cancel_requested  # warm-up: no verdict after 1 epoch

    metric_writes.append_metrics(db, bad, _epoch_points([0.3, 0.33], 10))
    sweeps.advance(db, sweep_store.get_sweep(db, sweep_id))
    run = run_store.get_run(db, bad)
    assert run.cancel_requested and sweep_store.PRUNED_TAG in run.tags
    run_writes.finish_run(db, bad, "cancelled")  # what the runner does on the cancel flag

    sweeps.advance(db, sweep_store.get_sweep(db, sweep_id))
    sweep = sweep_store.get_sweep(db, sweep_id)
    trials = sweeps.load_trials(db, sweep)
    assert [t.state for t in trials] == ["complete", "complete", "pruned"]
    assert trials[0].intermediate == {1: 0.6, 2: 0.8, 3: 0.9, 4: 0.95}  # by epoch, not step
    assert trials[2].intermediate == {1: 0.3, 2: 0.33}
    assert sweep.status == "completed" and sweep.best_run_id == trials[0].run.id


@pytest.mark.slow  # real workers, stopped and restarted mid-sweep
def test_cancel_and_worker_restart_mid_sweep(settings, db, demo_datasets):
    sweep_id = sweeps.submit_sweep(
        db,
        "iris",
        {
            "space": {"learning_rate": {"low": 1e-3, "high": 1e-2}},
            "sampler": "random",
            "pruner": "none",
            "max_trials": 6,
            "parallelism": 1,
        },
        base={"epochs": 4},
    )
    worker = start_worker()
    try:
        wait_until(
            lambda: len(sweep_store.trial_run_ids(db, sweep_id)) >= 2,
            timeout=120,
            what="2 trials launched",
        )
    finally:
        stop_worker(worker)
    # The sweep lives in the database: a new worker goes on where the last one stopped.
    launched_before = len(sweep_store.trial_run_ids(db, sweep_id))
    worker = start_worker()
    try:
        wait_until(
            lambda: len(sweep_store.trial_run_ids(db, sweep_id)) > launched_before,
            timeout=120,
            what="a trial launched after the restart",
        )
        cancelled = cli("sweeps", "cancel", str(sweep_id))
        assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
        wait_for_worker_polls(db, 2)  # the cancelled sweep must launch nothing more
        ids = sweep_store.trial_run_ids(db, sweep_id)
        wait_until(
            lambda: all(run_store.get_run(db, i).status not in ("queued", "running") for i in ids),
            timeout=60,
            what="every trial to finish",
        )
    finally:
        stop_worker(worker)
    assert sweep_store.get_sweep(db, sweep_id).status == "cancelled"
    assert sweep_store.trial_run_ids(db, sweep_id) == ids
    assert len(ids) < 6


# ---------------------------------------------------------------- the page


def _epoch_points(curve: list[float], steps_per_epoch: int) -> list[tuple]:
    """A trial's per-epoch values as a runner stores them: at optimizer steps, with the epoch
    series beside them (engine/core/epochs.py) and a training-loss point within each epoch."""
    now, points = time.time(), []
    for epoch, value in enumerate(curve, start=1):
        end, half = epoch * steps_per_epoch, (epoch - 0.5) * steps_per_epoch
        points += [("train_loss", half, 1.0, now), ("epoch", half, epoch - 0.5, now)]
        points += [("val_accuracy", end, value, now), ("epoch", end, float(epoch), now)]
    return points


def _finished_trial(db, sweep_id: int, lr: float, curve: list[float]) -> int:  # noqa: ANN001
    run_id = submit_run(
        db, "iris", {"learning_rate": lr, "monitor": "val_accuracy"}, sweep_id=sweep_id
    )
    run_writes.claim_next_run(db, "test-worker")
    # 4 optimizer steps an epoch; the pruned trial below has 10: compared epoch by epoch.
    metric_writes.append_metrics(db, run_id, _epoch_points(curve, 4))
    run_writes.finish_run(db, run_id, "completed")
    return run_id


def test_sweeps_page_form_trials_and_charts(settings, db, demo_datasets):
    at = open_page("views/sweeps.py")
    assert "No sweeps yet." in texts(at.caption)
    at.selectbox(key="sw_dataset").set_value(dataset_store.get_dataset_by_name(db, "iris").id).run()
    button(at, "Start sweep").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [created] = sweep_store.list_sweeps(db)
    assert created.objective == "val_accuracy" and set(created.space) == {
        "learning_rate", "hidden_sizes", "dropout",
    }  # fmt: skip
    assert created.space["hidden_sizes"]["choices"] == ["64", "128,64", "256,128"]

    runs = [
        _finished_trial(db, created.id, lr, curve)
        for lr, curve in [(1e-3, [0.5, 0.7]), (5e-3, [0.6, 0.9]), (1e-4, [0.3, 0.4])]
    ]
    at = open_page("views/sweeps.py", sweep=str(created.id))
    assert not at.exception
    table = at.dataframe[0].value
    assert table["best"].tolist() == ["", "★", ""]
    assert table["run"].tolist() == [f"/run?run={r}" for r in runs]
    # The page heads each chart; the figures carry no second title of their own.
    titles = [f["layout"].get("title", {}).get("text", "") for f in plotly_figures(at)]
    assert len(titles) == 3 and not any(titles)  # history, parallel, slices: 3 trials
    headings = texts(at.markdown)
    assert "**Optimisation history**" in headings and "**Slices**" in headings
    button(at, "Cancel sweep").click().run()
    assert sweep_store.get_sweep(db, created.id).status == "cancelled"
