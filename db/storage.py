"""What the storage report and the clean-up need from the database, in one read: every run
with its project, status and finish time, which runs must be kept (tag `keep`, or a
registered model version), the datasets' stored paths and the artifacts' recorded sizes.

Writes: none here (a clean-up forgets artifact rows through db/writes/artifacts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from db.models import artifacts, datasets, model_versions, projects, run_tags, runs
from db.session import reading

KEEP_TAG = "keep"


@dataclass(frozen=True)
class StoredRun:
    id: int
    name: str
    project: str
    status: str
    finished_at: datetime | None
    dataset_id: int | None
    # Why the clean-up must leave this run's files alone: "tag keep", "model fraud v2", or "".
    kept_because: str
    # The sum of the sizes its artifacts table rows record (what the engine registered).
    artifact_bytes: int


@dataclass(frozen=True)
class StoredDataset:
    id: int
    name: str
    path: str  # relative to SEEDLAB_HOME


def stored_runs(db: Engine) -> list[StoredRun]:
    """Every run (archived ones too: their files are on disk all the same), oldest first."""
    with reading(db) as conn:
        rows = conn.execute(
            select(
                runs.c.id,
                runs.c.name,
                projects.c.name.label("project"),
                runs.c.status,
                runs.c.finished_at,
                runs.c.dataset_id,
            )
            .select_from(runs.join(projects, projects.c.id == runs.c.project_id))
            .order_by(runs.c.id)
        ).all()
        kept_tag = set(
            conn.execute(select(run_tags.c.run_id).where(run_tags.c.tag == KEEP_TAG)).scalars()
        )
        registered: dict[int, str] = {}
        for run_id, name, version in conn.execute(
            select(model_versions.c.run_id, model_versions.c.name, model_versions.c.version)
        ):
            registered.setdefault(run_id, f"model {name} v{version}")
        sizes = dict(
            conn.execute(
                select(artifacts.c.run_id, func.sum(artifacts.c.bytes)).group_by(artifacts.c.run_id)
            ).all()
        )
    out = []
    for r in rows:
        why = registered.get(r.id) or (f"tag {KEEP_TAG}" if r.id in kept_tag else "")
        out.append(
            StoredRun(
                id=r.id,
                name=r.name,
                project=r.project,
                status=r.status,
                finished_at=r.finished_at,
                dataset_id=r.dataset_id,
                kept_because=why,
                artifact_bytes=int(sizes.get(r.id) or 0),
            )
        )
    return out


def stored_datasets(db: Engine) -> list[StoredDataset]:
    with reading(db) as conn:
        rows = conn.execute(
            select(datasets.c.id, datasets.c.name, datasets.c.path).order_by(datasets.c.id)
        ).all()
    return [StoredDataset(id=r.id, name=r.name, path=r.path) for r in rows]


def row_counts(db: Engine) -> dict[str, int]:
    """How many runs and datasets there are; zeros for a database without Seedlab's tables."""
    from sqlalchemy import inspect

    with reading(db) as conn:
        if not inspect(conn).has_table("runs"):
            return {"runs": 0, "datasets": 0}
        return {
            "runs": conn.execute(select(func.count()).select_from(runs)).scalar_one(),
            "datasets": conn.execute(select(func.count()).select_from(datasets)).scalar_one(),
        }
