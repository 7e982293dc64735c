"""Creating projects. "Default" (id 1) is made by migration 0002 and always exists.

Reads: db/projects.py.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from db.models import projects
from db.projects import MAX_NAME, DuplicateProjectName, ProjectRecord, get_project
from db.session import utcnow, writing


def create_project(db: Engine, name: str, description: str = "") -> ProjectRecord:
    clean = name.strip()
    if not clean:
        raise ValueError("project name: must not be empty")
    if len(clean) > MAX_NAME:
        raise ValueError(f"project name: at most {MAX_NAME} characters")
    try:
        with writing(db) as conn:
            project_id = conn.execute(
                insert(projects).values(name=clean, description=description, created_at=utcnow())
            ).inserted_primary_key[0]
    except IntegrityError as exc:
        raise DuplicateProjectName(f"A project named {clean!r} already exists.") from exc
    project = get_project(db, project_id)
    assert project is not None
    return project


def set_baseline(db: Engine, project_id: int, run_id: int | None) -> None:
    """Pin `run_id` as the project's baseline (None: unpin)."""
    with writing(db) as conn:
        conn.execute(
            update(projects).where(projects.c.id == project_id).values(baseline_run_id=run_id)
        )
