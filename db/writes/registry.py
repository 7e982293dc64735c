"""Model registry writes: register a run's model as the next version of a name, change a
version's stage (one production per name), remove a version.

Reads and the rules on names and stages: db/registry.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.models import model_versions, runs
from db.registry import (
    ModelVersionRecord,
    RegistryError,
    _missing,
    check_stage,
    clean_name,
    get_version,
)
from db.session import utcnow, writing

# A lost race on PostgreSQL (two registrations taking the same number, two promotes) is retried
# this many times before the caller hears about it.
WRITE_ATTEMPTS = 3


def _retrying(db: Engine, work: Any) -> Any:  # noqa: ANN401
    """Run `work(conn)` in one write transaction, again on a lost race (IntegrityError)."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with writing(db) as conn:
                return work(conn)
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise RegistryError(
                    "Another change to this model was saved at the same moment; try again."
                ) from None
    raise AssertionError("unreachable")


def _archive_production(conn: Connection, name: str, now: datetime) -> None:
    conn.execute(
        update(model_versions)
        .where(model_versions.c.name == name, model_versions.c.stage == "production")
        .values(stage="archived", stage_changed_at=now)
    )


def register_version(
    db: Engine, run_id: int, name: str, *, stage: str = "none", description: str = ""
) -> ModelVersionRecord:
    """Register a completed run's model as the next version of `name`."""
    name, stage = clean_name(name), check_stage(stage)

    def work(conn: Connection) -> int:
        status = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar()
        if status is None:
            raise RegistryError(f"No run {run_id}.")
        if status != "completed":
            raise RegistryError(
                f"Run {run_id} is {status}; only a completed run has a model to register."
            )
        existing = conn.execute(
            select(model_versions.c.version).where(
                model_versions.c.name == name, model_versions.c.run_id == run_id
            )
        ).scalar()
        if existing is not None:
            raise RegistryError(
                f"Run {run_id} is already version {existing} of {name!r}; "
                f"change its stage with `seedlab models promote {name!r} {existing} STAGE`."
            )
        version = 1 + (
            conn.execute(
                select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
            ).scalar()
            or 0
        )
        now = utcnow()
        if stage == "production":
            _archive_production(conn, name, now)
        conn.execute(
            insert(model_versions).values(
                name=name,
                version=version,
                run_id=run_id,
                stage=stage,
                description=description.strip(),
                created_at=now,
                stage_changed_at=now,
            )
        )
        return version

    version = _retrying(db, work)
    record = get_version(db, name, version)
    assert record is not None
    return record


def set_stage(db: Engine, name: str, version: int, stage: str) -> ModelVersionRecord:
    """Move a version to a stage; to `production`, the previous production version is archived
    in the same transaction."""
    name, stage = clean_name(name), check_stage(stage)

    def work(conn: Connection) -> None:
        current = conn.execute(
            select(model_versions.c.stage).where(
                model_versions.c.name == name, model_versions.c.version == version
            )
        ).scalar()
        if current is None:
            raise RegistryError(_missing(conn, name, version))
        if current == stage:
            return
        now = utcnow()
        if stage == "production":
            _archive_production(conn, name, now)
        conn.execute(
            update(model_versions)
            .where(model_versions.c.name == name, model_versions.c.version == version)
            .values(stage=stage, stage_changed_at=now)
        )

    _retrying(db, work)
    record = get_version(db, name, version)
    assert record is not None
    return record


def delete_version(db: Engine, name: str, version: int) -> None:
    """Remove a version from the registry (the run and its files stay). Production is refused:
    something may be serving it."""
    name = clean_name(name)
    with writing(db) as conn:
        stage = conn.execute(
            select(model_versions.c.stage).where(
                model_versions.c.name == name, model_versions.c.version == version
            )
        ).scalar()
        if stage is None:
            raise RegistryError(_missing(conn, name, version))
        if stage == "production":
            raise RegistryError(
                f"{name!r} v{version} is in production; archive it or promote another version "
                "first, then delete it."
            )
        conn.execute(
            delete(model_versions).where(
                model_versions.c.name == name, model_versions.c.version == version
            )
        )
