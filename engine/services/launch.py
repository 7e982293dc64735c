"""Queue a run: validate its config, then insert a `queued` row. The engine does the rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db import datasets as dataset_store
from db.records import DatasetRecord
from db.writes import runs as run_writes
from engine.core.catalog import effective_task, model_family_for, monitor_error
from engine.core.config import ConfigProblem, RunConfig, validate_config
from engine.core.defaults import suggest_for_dataset
from engine.core.errors import ConfigError, DatasetError
from engine.core.family_defaults import fill_family_defaults
from engine.core.pretrained import FAMILY, with_kind_defaults


def find_dataset(db: Engine, ref: str | int) -> DatasetRecord:
    """A dataset by id or name (or "NAME@N": its dataset), or a DatasetError listing the
    names there are."""
    from engine.services.dataset_versions import split_ref

    record = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        record = dataset_store.get_dataset(db, int(ref))
    if record is None:
        record = dataset_store.get_dataset_by_name(db, str(ref))
    if record is None and split_ref(str(ref))[1] is not None:
        record = dataset_store.get_dataset_by_name(db, split_ref(str(ref))[0])
    if record is None:
        names = [d.name for d in dataset_store.list_datasets(db)]
        known = ", ".join(names) if names else "none yet — add one with `seedlab datasets add`"
        raise DatasetError(f"No dataset {ref!r}. Datasets: {known}.")
    return record


def _task_problems(config: RunConfig, dataset: DatasetRecord) -> list[ConfigProblem]:
    """A monitor the task does not measure; regression on a categorical target."""
    problems = []
    sentence = monitor_error(config.monitor, effective_task(config.task, dataset.task))
    if sentence:
        problems.append(ConfigProblem(("monitor",), sentence))
    if config.task == "regression" and dataset.task == "classification":
        numeric = next(
            (c for c in dataset.schema["columns"] if c["name"] == dataset.target and "mean" in c),
            None,
        )
        if numeric is None:
            problems.append(
                ConfigProblem(
                    ("task",),
                    f"task: regression needs a numeric target, but {dataset.target!r} in "
                    f"{dataset.name!r} holds categories. Use task=classification or auto.",
                )
            )
    return problems


def dataset_problems(config: RunConfig, dataset: DatasetRecord) -> list[ConfigProblem]:
    """What submit refuses about this config on this dataset (a monitor the task does not
    measure, regression on categories, a pretrained model that is not here), each with the
    field it is about: New run shows each beside its field before Start training is clicked."""
    problems = _task_problems(config, dataset)
    try:
        check_pretrained(config, dataset)
    except ConfigError as exc:
        field = "encoder_mode" if str(exc).startswith("encoder_mode") else "base_model"
        problems.append(ConfigProblem((field,), str(exc)))
    return problems


def check_task(config: RunConfig, dataset: DatasetRecord) -> None:
    problems = _task_problems(config, dataset)
    if problems:
        raise ConfigError(problems[0].sentence, problems=problems)


def check_pretrained(config: RunConfig, dataset: DatasetRecord) -> None:
    """A pretrained encoder whose weights cannot be had here is refused now, not mid-run."""
    try:
        family = model_family_for(config.model, dataset.kind)
    except ValueError:
        return
    if family == FAMILY:
        from engine.core.settings import Settings
        from engine.ml.pretrained_source import check_base_model

        check_base_model(config.base_model, Settings.from_env(), kind=dataset.kind)
        if dataset.kind == "image" and config.encoder_mode == "lora":
            raise ConfigError(
                "encoder_mode lora is for pretrained text encoders; for an image backbone use "
                "frozen (fast on a CPU) or full fine-tuning."
            )


def default_run_name(dataset: DatasetRecord, config: RunConfig) -> str:
    """e.g. churn-mlp-64x32-lr0.001, support_tickets-lstm-lr0.001: the family that will train."""
    try:
        family = model_family_for(config.model, dataset.kind)
    except ValueError:
        family = config.model
    shape = ""
    if family == "mlp":
        shape = "-" + ("x".join(str(s) for s in config.hidden_sizes) or "linear")
    return f"{dataset.name}-{family}{shape}-lr{config.learning_rate:g}"


def submit_run(
    db: Engine,
    dataset_ref: str | int,
    values: dict[str, Any] | RunConfig,
    *,
    name: str | None = None,
    parent_run_id: int | None = None,
    notes: str = "",
    sweep_id: int | None = None,
    project_id: int | None = None,
    tags: tuple[str, ...] | list[str] = (),
    owner: str | None = None,
    dataset_version: int | None = None,
) -> int:
    """Validate and queue a run (in the Default project unless `project_id`); returns its id.

    `dataset_ref` is an id, "NAME" (its latest version) or "NAME@N" (version N);
    `dataset_version` picks the version instead (a clone, a student: their parent's). The run
    records the exact version it will train on. Fields missing from a dict of values get the
    settings suggested for the dataset's kind and size (engine.core.defaults) and the named
    model family's own values (engine.core.family_defaults); a RunConfig is taken as it is.
    """
    from engine.services.dataset_versions import get_version, resolve

    dataset, version = resolve(db, dataset_ref)
    if dataset_version is not None:
        version = get_version(db, dataset, dataset_version)
    if isinstance(values, RunConfig):
        config = values
    else:
        suggested = suggest_for_dataset(dataset)
        if values.get("task", "auto") not in ("auto", dataset.task):
            # The suggestions about labels do not apply to a task the user switched to.
            suggested.pop("imbalance", None)
            suggested.pop("monitor", None)
        merged = {**suggested, **values}
        try:
            family = model_family_for(str(merged.get("model", "auto")), dataset.kind)
        except ValueError:  # validate_config or prepare says why, in the user's words
            family = None
        if family is not None and merged.get("model", "auto") != "auto":
            # auto: each candidate gets its family's values when the engine chooses one.
            merged = fill_family_defaults(merged, family, user_set=set(values))
        # A pretrained model: its backbone and per-mode learning rate when the user set none.
        config = validate_config(with_kind_defaults(merged, family or "", dataset.kind))
    check_task(config, dataset)
    check_pretrained(config, dataset)
    run_name = (name or "").strip() or default_run_name(dataset, config)
    if len(run_name) > 200:
        raise ConfigError("name: at most 200 characters")
    return run_writes.create_run(
        db,
        name=run_name,
        dataset_id=dataset.id,
        dataset_version=version.number,
        config=config.model_dump(mode="json"),
        parent_run_id=parent_run_id,
        notes=notes,
        sweep_id=sweep_id,
        **({"project_id": project_id} if project_id is not None else {}),
        tags=tags,
        owner=owner,
    )
