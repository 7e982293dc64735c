"""Creating a project, checked and audited (finding one by name: run_admin.find_project)."""

from __future__ import annotations

from sqlalchemy import Engine

from db.writes import projects as project_writes
from engine.core.errors import SeedlabError
from engine.services import audit
from engine.services.permissions import Actor, Permission, check


def create_project(db: Engine, actor: Actor, name: str, description: str = "") -> int:
    """A new project's id; a taken or empty name is a SeedlabError that says so."""
    check(actor, Permission.CREATE_PROJECT)
    try:
        project = project_writes.create_project(db, name, description)
    except ValueError as exc:
        raise SeedlabError(str(exc)) from exc
    audit.record(db, actor, "create_project", f"project {project.id} {project.name}")
    return project.id
