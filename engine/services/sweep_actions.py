"""What a user does to sweeps, checked and audited: launch one, cancel one, launch its best
trial's config as a run. The search itself (spaces, Optuna, advancing) is services/sweeps.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db import sweeps as sweep_store
from engine.services import audit
from engine.services.permissions import Actor, Permission, check


def launch_sweep(db: Engine, actor: Actor, dataset_ref: str | int, spec: Any, **submit: Any) -> int:
    """engine.services.sweeps.submit_sweep as `actor`; its trials are owned by `actor` too."""
    from engine.services import sweeps

    check(actor, Permission.LAUNCH)
    sweep_id = sweeps.submit_sweep(db, dataset_ref, spec, owner=actor.name, **submit)
    audit.record(db, actor, "launch", f"sweep {sweep_id}", audit.dataset_label(db, dataset_ref))
    return sweep_id


def launch_recipe_sweep(
    settings: Any, db: Engine, actor: Actor, recipe: str, spec: Any, **submit: Any
) -> int:
    """engine.services.sweeps.submit_recipe_sweep as `actor`; trials owned by `actor` too."""
    from engine.services import sweeps

    check(actor, Permission.LAUNCH)
    sweep_id = sweeps.submit_recipe_sweep(settings, db, recipe, spec, owner=actor.name, **submit)
    audit.record(db, actor, "launch", f"sweep {sweep_id}", f"recipe {recipe}")
    return sweep_id


def cancel_sweep(db: Engine, actor: Actor, sweep_id: int) -> str | None:
    """Cancel a sweep and its queued or running trials; None when there is no such sweep."""
    from engine.services import sweeps

    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        return None
    check(actor, Permission.CANCEL, sweep.owner, what=f"sweep {sweep_id}")
    status = sweeps.cancel_sweep(db, sweep_id)
    audit.record(db, actor, "cancel", f"sweep {sweep_id}")
    return status


def launch_best(db: Engine, actor: Actor, sweep_id: int, **kwargs: Any) -> int:
    """Queue a run with the sweep's best trial's config, owned by `actor`."""
    from engine.services import sweeps

    check(actor, Permission.LAUNCH)
    run_id = sweeps.launch_best(db, sweep_id, owner=actor.name, **kwargs)
    audit.record(db, actor, "launch", f"run {run_id}", f"best of sweep {sweep_id}")
    return run_id
