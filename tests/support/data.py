"""Rows and runs for tests: a stub dataset row, a run trained for real, a resume checkpoint, a
dataset listing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db import datasets as dataset_store
from db import runs as run_store
from db.writes import runs as run_writes
from db.writes.datasets import insert_dataset
from engine.core.settings import Settings

TINY: dict[str, Any] = {"epochs": 3, "batch_size": 32, "seed": 0}


def stub_dataset(db: Engine, name: str = "d") -> int:
    """The id of a dataset row with no files behind it: for tests of rows that point at one."""
    return insert_dataset(
        db,
        name=name,
        kind="tabular",
        task="classification",
        target="y",
        schema={"columns": [], "features": []},
        n_rows=1,
        n_columns=1,
        sha256="0" * 64,
        path="/nowhere",
        source_filename="d.csv",
    ).id


def completed_run(settings: Settings, db: Engine, dataset: str | int, **values: Any) -> int:
    """The id of a run on `dataset` trained for real in this process (tiny config, no worker).

    For tests of what comes after training (Playground, export, registry, explanations): the
    run goes through `submit_run` → claim → `runner.execute` exactly as a worker would drive it.
    Raises with the run's error if it does not complete.
    """
    # Imported here: the runner pulls in torch and scikit-learn, which most users of this
    # module (the database tests) never need.
    from engine.execution.runner import execute
    from engine.services.launch import submit_run

    run_id = submit_run(db, dataset, {**TINY, **values})
    claimed = run_writes.claim_next_run(db, worker_id="tests")
    assert claimed == run_id, "another run was queued first"
    status = execute(settings, run_id)
    run = run_store.get_run(db, run_id)
    assert status == "completed", f"run {run_id} ended {status}: {run.error if run else '?'}"
    return run_id


def resume_checkpoint(settings: Settings, run_id: int, epoch: int) -> None:
    """A valid (empty-model) resume checkpoint of `run_id` at `epoch`: what `runs resume` reads
    its epoch from. For tests of resuming, not of training."""
    import torch

    from engine.core.run_files import resume_path
    from engine.ml.checkpoints import TrainState, save_train_state

    rng = torch.get_rng_state()
    path = resume_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_train_state(path, TrainState(epoch, {}, {}, None, None, rng, [], rng))


def dataset_state(settings: Settings, db: Engine) -> tuple[list[str], list[str]]:
    """The dataset names in the database and the folders under the datasets directory: what
    a refused upload must leave unchanged."""
    names = [d.name for d in dataset_store.list_datasets(db)]
    return names, sorted(p.name for p in settings.datasets_dir.iterdir())


def finished_run(db: Engine, dataset: str, name: str, accuracy: float) -> int:
    """A completed run on `dataset` with a two-point loss curve and a test accuracy, trained by
    nobody (rows only): for tests of what pages show of a finished run, in milliseconds."""
    from db.writes import metrics as metric_writes
    from engine.services.launch import submit_run

    run_id = submit_run(db, dataset, {"epochs": 2}, name=name)
    metric_writes.append_metrics(
        db,
        run_id,
        [
            ("val_loss", 1, 1.0 - accuracy / 2, 1.0),
            ("val_loss", 2, 1.0 - accuracy, 2.0),
            ("test_accuracy", 2, accuracy, 2.0),
        ],
    )
    run_writes.finish_run(db, run_id, "completed")
    return run_id
