"""The model registry as the CLI and the pages use it: db/registry.py plus the run's files.

db/ knows no paths, so the check that a run still has its model file, and the path a user of a
registered model loads, live here. Refusals come back as SeedlabError sentences.

What a user does to the registry goes through `register`, `promote` and `unregister`: each
checks PROMOTE and writes one audit entry. `register_model`, `set_stage` and `delete_version`
below them check nothing: they are the steps those three take (and what tests use to set up a
registry), never called by a page or the CLI.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from db import registry
from db.registry import ModelVersionRecord, RegisteredModel
from db.writes import registry as registry_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import checkpoint_path
from engine.core.settings import Settings
from engine.services import audit
from engine.services.permissions import Actor, Permission, check

STAGES = registry.MODEL_STAGES


def register_model(
    settings: Settings,
    db: Engine,
    run_id: int,
    name: str,
    *,
    stage: str = "none",
    description: str = "",
) -> ModelVersionRecord:
    """Register a completed run's model.pt as the next version of `name`."""
    if not checkpoint_path(settings, run_id).is_file():
        raise SeedlabError(
            f"Run {run_id} has no model file ({checkpoint_path(settings, run_id)}); "
            "only a completed run whose files are kept can be registered."
        )
    try:
        return registry_writes.register_version(
            db, run_id, name, stage=stage, description=description
        )
    except registry.RegistryError as exc:
        raise SeedlabError(str(exc)) from None


def set_stage(db: Engine, name: str, version: int, stage: str) -> ModelVersionRecord:
    try:
        return registry_writes.set_stage(db, name, version, stage)
    except registry.RegistryError as exc:
        raise SeedlabError(str(exc)) from None


def delete_version(db: Engine, name: str, version: int) -> None:
    try:
        registry_writes.delete_version(db, name, version)
    except registry.RegistryError as exc:
        raise SeedlabError(str(exc)) from None


def register(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    name: str,
    *,
    stage: str = "none",
    description: str = "",
) -> ModelVersionRecord:
    """Register a completed run's model as the next version of `name`, as `actor`."""
    check(actor, Permission.PROMOTE, what=f"run {run_id}")
    version = register_model(settings, db, run_id, name, stage=stage, description=description)
    audit.record(db, actor, "register", f"run {run_id}", f"{version.label} ({version.stage})")
    return version


def promote(db: Engine, actor: Actor, name: str, version: int, stage: str) -> ModelVersionRecord:
    """Move a version to `stage` (production archives the one that was), as `actor`."""
    check(actor, Permission.PROMOTE, what=f"model {name}")
    record = set_stage(db, name, version, stage)
    audit.record(db, actor, "promote", f"model {record.name} v{record.version}", record.stage)
    return record


def unregister(db: Engine, actor: Actor, name: str, version: int) -> None:
    """Remove a version from the registry (the run and its files stay), as `actor`."""
    check(actor, Permission.PROMOTE, what=f"model {name}")
    delete_version(db, name, version)
    audit.record(db, actor, "unregister", f"model {name} v{version}")


def find_model(db: Engine, name: str) -> RegisteredModel:
    model = registry.get_model(db, name.strip())
    if model is None:
        names = ", ".join(m.name for m in registry.list_models(db)) or "none yet"
        raise SeedlabError(
            f"No registered model {name!r} (registered: {names}). Register a run's model with "
            "`seedlab models register RUN_ID NAME`."
        )
    return model


def model_file(settings: Settings, version: ModelVersionRecord) -> Path:
    """The model.pt a registered version loads (engine.ml.predictor.Predictor.load takes it)."""
    return checkpoint_path(settings, version.run_id)
