"""Queue a run: validate its config, then insert a `queued` row. The engine does the rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db import datasets as dataset_store
from db import runs as run_store
from db.records import DatasetRecord
from engine.config import RunConfig, validate_config
from engine.errors import ConfigError, DatasetError


def find_dataset(db: Engine, ref: str | int) -> DatasetRecord:
    """A dataset by id or name, or a DatasetError listing the names there are."""
    record = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        record = dataset_store.get_dataset(db, int(ref))
    if record is None:
        record = dataset_store.get_dataset_by_name(db, str(ref))
    if record is None:
        names = [d.name for d in dataset_store.list_datasets(db)]
        known = ", ".join(names) if names else "none yet — add one with `seedlab datasets add`"
        raise DatasetError(f"No dataset {ref!r}. Datasets: {known}.")
    return record


def check_task(config: RunConfig, dataset: DatasetRecord) -> None:
    if config.task == "regression" and dataset.task == "classification":
        numeric = next(
            (c for c in dataset.schema["columns"] if c["name"] == dataset.target and "mean" in c),
            None,
        )
        if numeric is None:
            raise ConfigError(
                f"task: regression needs a numeric target, but {dataset.target!r} in "
                f"{dataset.name!r} holds categories. Use task=classification or auto."
            )


def default_run_name(dataset: DatasetRecord, config: RunConfig) -> str:
    sizes = "x".join(str(s) for s in config.hidden_sizes) or "linear"
    return f"{dataset.name}-{config.model}-{sizes}-lr{config.learning_rate:g}"


def submit_run(
    db: Engine,
    dataset_ref: str | int,
    values: dict[str, Any] | RunConfig,
    *,
    name: str | None = None,
    parent_run_id: int | None = None,
    notes: str = "",
    project_id: int | None = None,
    tags: list[str] | None = None,
) -> int:
    """Validate and queue a run (in the Default project unless `project_id`); returns its id."""
    dataset = find_dataset(db, dataset_ref)
    config = values if isinstance(values, RunConfig) else validate_config(values)
    check_task(config, dataset)
    run_name = (name or "").strip() or default_run_name(dataset, config)
    if len(run_name) > 200:
        raise ConfigError("name: at most 200 characters")
    return run_store.create_run(
        db,
        name=run_name,
        dataset_id=dataset.id,
        config=config.model_dump(mode="json"),
        parent_run_id=parent_run_id,
        notes=notes,
        **({"project_id": project_id} if project_id is not None else {}),
        tags=tags or (),
    )
