"""Projects: named groups of runs. "Default" (id 1) always exists and holds runs without one.
Writes: db/writes/projects.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from db.models import DEFAULT_PROJECT_ID, projects, runs
from db.session import reading

MAX_NAME = 200


class DuplicateProjectName(ValueError):
    pass


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    description: str
    created_at: datetime
    n_runs: int = 0
    baseline_run_id: int | None = None  # the run pinned as the project's baseline


def list_projects(db: Engine) -> list[ProjectRecord]:
    """All projects by name ("Default" first), each with its number of runs."""
    counts = (
        select(runs.c.project_id, func.count().label("n")).group_by(runs.c.project_id).subquery()
    )
    stmt = (
        select(projects, func.coalesce(counts.c.n, 0).label("n_runs"))
        .outerjoin(counts, counts.c.project_id == projects.c.id)
        .order_by(projects.c.id != DEFAULT_PROJECT_ID, projects.c.name)
    )
    with reading(db) as conn:
        rows = conn.execute(stmt).all()
    return [
        ProjectRecord(r.id, r.name, r.description or "", r.created_at, r.n_runs, r.baseline_run_id)
        for r in rows
    ]


def get_project(db: Engine, project_id: int) -> ProjectRecord | None:
    return next((p for p in list_projects(db) if p.id == project_id), None)


def get_project_by_name(db: Engine, name: str) -> ProjectRecord | None:
    return next((p for p in list_projects(db) if p.name == name), None)


def baseline_run_ids(db: Engine, project_ids: Iterable[int]) -> list[int]:
    """The runs these projects pinned as their baselines, in project order: the one column
    alone (list_projects counts every project's runs, which a page visit need not pay for)."""
    wanted = list(project_ids)
    if not wanted:
        return []
    stmt = (
        select(projects.c.baseline_run_id)
        .where(projects.c.id.in_(wanted), projects.c.baseline_run_id.is_not(None))
        .order_by(projects.c.id)
    )
    with reading(db) as conn:
        return list(dict.fromkeys(conn.execute(stmt).scalars()))
