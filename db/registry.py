"""The model registry: a completed run's model under a name, in numbered versions with stages.

Reads and the rules on names and stages are here; the writes are db/writes/registry.py.

Stage rules, enforced in one write transaction each (and by the schema underneath):
- versions of a name count up from 1; a run is registered under a name at most once;
- stages are `none`, `staging`, `production`, `archived`; any version may move to any stage;
- at most one `production` version per name: making a version production archives the one
  that was, in the same transaction. On SQLite writers queue on the write lock (BEGIN
  IMMEDIATE), so two concurrent promotes apply one after the other and the last one wins; on
  PostgreSQL the partial unique index makes the loser of a race fail, and it is retried on a
  fresh snapshot.
- a production version cannot be deleted (archive it or promote another first), and a run with
  versions cannot be deleted (db/writes/run_edits.py refuses; the foreign key is RESTRICT).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from db.models import MODEL_STAGES, datasets, model_versions, run_summaries, runs
from db.session import reading

MAX_NAME_LENGTH = 100


class RegistryError(ValueError):
    """A registry request that cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class ModelVersionRecord:
    id: int
    name: str
    version: int
    run_id: int
    stage: str
    description: str
    created_at: datetime
    stage_changed_at: datetime
    run_name: str
    run_status: str
    dataset_name: str
    # The source run's test metrics (test_accuracy, test_rmse, ...), last values.
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "stage": self.stage,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "run_status": self.run_status,
            "dataset": self.dataset_name,
            "description": self.description,
            "created_at": self.created_at,
            "stage_changed_at": self.stage_changed_at,
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class RegisteredModel:
    """A name and its versions, newest first."""

    name: str
    versions: list[ModelVersionRecord]

    @property
    def production(self) -> ModelVersionRecord | None:
        return next((v for v in self.versions if v.stage == "production"), None)

    @property
    def latest(self) -> ModelVersionRecord:
        return self.versions[0]

    @property
    def default(self) -> ModelVersionRecord:
        """What a user of the name gets unless they pick a version: production, else the newest
        version that is not archived, else the newest."""
        live = [v for v in self.versions if v.stage != "archived"]
        return self.production or (live[0] if live else self.latest)

    @property
    def run_id(self) -> int:
        """The source run of the default version (the run whose model.pt to load)."""
        return self.default.run_id


def clean_name(name: str) -> str:
    """A model name as stored: trimmed, 1..100 printable characters."""
    cleaned = str(name).strip()
    if not cleaned:
        raise RegistryError("A model name cannot be empty; give a name such as 'churn-model'.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise RegistryError(
            f"A model name has at most {MAX_NAME_LENGTH} characters; this one has {len(cleaned)}."
        )
    if any(unicodedata.category(c).startswith("C") for c in cleaned):
        raise RegistryError("A model name cannot hold control characters such as line breaks.")
    return cleaned


def check_stage(stage: str) -> str:
    if stage not in MODEL_STAGES:
        raise RegistryError(f"stage must be one of {', '.join(MODEL_STAGES)}; got {stage!r}.")
    return stage


def _missing(conn: Connection, name: str, version: int) -> str:
    versions = conn.execute(
        select(model_versions.c.version)
        .where(model_versions.c.name == name)
        .order_by(model_versions.c.version)
    ).all()
    if not versions:
        return f"No registered model {name!r}; `seedlab models list` shows the names."
    listed = ", ".join(str(v[0]) for v in versions)
    return f"{name!r} has no version {version}; its versions are {listed}."


# ---------------------------------------------------------------- reads


def _select() -> Any:  # noqa: ANN401
    return (
        select(
            model_versions,
            runs.c.name.label("run_name"),
            runs.c.status.label("run_status"),
            datasets.c.name.label("dataset_name"),
        )
        .join(runs, runs.c.id == model_versions.c.run_id)
        .join(datasets, datasets.c.id == runs.c.dataset_id)
    )


def _records(conn: Connection, rows: list[Any]) -> list[ModelVersionRecord]:
    run_ids = sorted({r.run_id for r in rows})
    metrics: dict[int, dict[str, float]] = {rid: {} for rid in run_ids}
    if run_ids:
        summary = conn.execute(
            select(run_summaries.c.run_id, run_summaries.c.key, run_summaries.c.last_value).where(
                run_summaries.c.run_id.in_(run_ids), run_summaries.c.key.startswith("test_")
            )
        ).all()
        for run_id, key, value in summary:
            metrics[run_id][key] = value
    return [ModelVersionRecord(**r._mapping, metrics=metrics[r.run_id]) for r in rows]


def get_version(db: Engine, name: str, version: int) -> ModelVersionRecord | None:
    with reading(db) as conn:
        rows = conn.execute(
            _select().where(model_versions.c.name == name, model_versions.c.version == version)
        ).all()
        records = _records(conn, rows)
    return records[0] if records else None


def list_versions(db: Engine, name: str | None = None) -> list[ModelVersionRecord]:
    """Versions by name, newest version first within a name."""
    stmt = _select().order_by(model_versions.c.name, model_versions.c.version.desc())
    if name is not None:
        stmt = stmt.where(model_versions.c.name == name)
    with reading(db) as conn:
        return _records(conn, conn.execute(stmt).all())


def list_models(db: Engine) -> list[RegisteredModel]:
    """Every registered name with its versions (newest first), names in alphabetical order."""
    grouped: dict[str, list[ModelVersionRecord]] = {}
    for record in list_versions(db):
        grouped.setdefault(record.name, []).append(record)
    return [RegisteredModel(name, versions) for name, versions in grouped.items()]


def get_model(db: Engine, name: str) -> RegisteredModel | None:
    versions = list_versions(db, name)
    return RegisteredModel(name, versions) if versions else None


def production_version(db: Engine, name: str) -> ModelVersionRecord | None:
    """The version of `name` in production, or None."""
    with reading(db) as conn:
        rows = conn.execute(
            _select().where(model_versions.c.name == name, model_versions.c.stage == "production")
        ).all()
        records = _records(conn, rows)
    return records[0] if records else None


def versions_of_run(db: Engine, run_id: int) -> list[ModelVersionRecord]:
    """The registry entries made from one run (the Run page shows them; deletion checks them)."""
    with reading(db) as conn:
        rows = conn.execute(
            _select().where(model_versions.c.run_id == run_id).order_by(model_versions.c.name)
        ).all()
        return _records(conn, rows)
