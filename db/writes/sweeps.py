"""Sweep writes: create, end, remember the best trial, mark a trial pruned. Trials are
ordinary runs with runs.sweep_id set.

Reads: db/sweeps.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select, update

from db.models import DEFAULT_PROJECT_ID, run_tags, runs, sweeps
from db.session import utcnow, writing
from db.sweeps import PRUNED_TAG


def create_sweep(
    db: Engine,
    *,
    name: str,
    dataset_id: int | None,
    base_config: dict[str, Any],
    dataset_version: int | None = None,
    space: dict[str, Any],
    sampler: str,
    pruner: str,
    objective: str,
    direction: str,
    max_trials: int,
    time_limit_s: float | None,
    parallelism: int,
    seed: int = 0,
    project_id: int = DEFAULT_PROJECT_ID,
    owner: str | None = None,
) -> int:
    with writing(db) as conn:
        return conn.execute(
            insert(sweeps).values(
                name=name,
                dataset_id=dataset_id,
                dataset_version=dataset_version,
                project_id=project_id,
                base_config=base_config,
                space=space,
                sampler=sampler,
                pruner=pruner,
                objective=objective,
                direction=direction,
                max_trials=max_trials,
                time_limit_s=time_limit_s,
                parallelism=parallelism,
                seed=seed,
                status="running",
                created_at=utcnow(),
                owner=owner,
            )
        ).inserted_primary_key[0]


def finish_sweep(
    db: Engine, sweep_id: int, status: str, *, best_run_id: int | None, error: str | None = None
) -> bool:
    """End a running sweep (first writer wins, like runs)."""
    with writing(db) as conn:
        return (
            conn.execute(
                update(sweeps)
                .where(sweeps.c.id == sweep_id, sweeps.c.status == "running")
                .values(status=status, best_run_id=best_run_id, error=error, finished_at=utcnow())
            ).rowcount
            > 0
        )


def set_best_run(db: Engine, sweep_id: int, run_id: int | None) -> None:
    with writing(db) as conn:
        conn.execute(update(sweeps).where(sweeps.c.id == sweep_id).values(best_run_id=run_id))


def mark_pruned(db: Engine, run_id: int) -> None:
    """Tag a trial as pruned and ask it to stop; it then ends `cancelled`, tagged `pruned`."""
    with writing(db) as conn:
        exists = conn.execute(
            select(run_tags.c.tag).where(run_tags.c.run_id == run_id, run_tags.c.tag == PRUNED_TAG)
        ).first()
        if exists is None:
            conn.execute(insert(run_tags).values(run_id=run_id, tag=PRUNED_TAG))
        status = conn.execute(
            select(runs.c.status).where(runs.c.id == run_id).with_for_update()
        ).scalar()
        if status == "queued":
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(status="cancelled", cancel_requested=True, finished_at=utcnow())
            )
        elif status == "running":
            conn.execute(update(runs).where(runs.c.id == run_id).values(cancel_requested=True))
