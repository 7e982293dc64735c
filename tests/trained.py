"""A completed run made in this process: the real runner on a tiny config, no worker needed.

For tests of what comes after training (Playground, export, registry, explanations): the run
goes through `submit_run` → claim → `runner.execute` exactly as a worker would drive it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db import runs as run_store
from db.writes import runs as run_writes
from engine.core.settings import Settings
from engine.execution.runner import execute
from engine.services.launch import submit_run

TINY: dict[str, Any] = {"epochs": 3, "batch_size": 32, "seed": 0}


def completed_run(settings: Settings, db: Engine, dataset: str | int, **values: Any) -> int:
    """The id of a completed run on `dataset` (raises with the run's error otherwise)."""
    run_id = submit_run(db, dataset, {**TINY, **values})
    claimed = run_writes.claim_next_run(db, worker_id="tests")
    assert claimed == run_id, "another run was queued first"
    status = execute(settings, run_id)
    run = run_store.get_run(db, run_id)
    assert status == "completed", f"run {run_id} ended {status}: {run.error if run else '?'}"
    return run_id
