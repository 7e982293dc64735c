"""Run changes that touch both the database and the run's folder (deletion), and project lookup
by name for the CLI and the dashboard."""

from __future__ import annotations

import shutil

from sqlalchemy import Engine

from db import projects as project_store
from db.projects import ProjectRecord
from db.writes import run_edits
from engine.core.errors import SeedlabError
from engine.core.settings import Settings


def find_project(db: Engine, name: str) -> ProjectRecord:
    """A project by name, or an error listing the projects there are."""
    project = project_store.get_project_by_name(db, name.strip())
    if project is None:
        names = ", ".join(p.name for p in project_store.list_projects(db))
        raise SeedlabError(
            f"No project {name!r}. Projects: {names}. Create it with `seedlab projects create "
            f"{name!r}`."
        )
    return project


def delete_run(settings: Settings, db: Engine, run_id: int) -> bool:
    """Delete a finished run's rows, then its folder (checkpoints, log, exports).

    The rows go first: a folder left behind by a failed removal is only disk space, while a row
    whose files are gone would be a run that lies. Returns whether the folder is gone too.
    """
    try:
        run_edits.delete_run_row(db, run_id)
    except (LookupError, ValueError) as exc:
        raise SeedlabError(str(exc)) from exc
    folder = settings.run_dir(run_id)
    shutil.rmtree(folder, ignore_errors=True)
    return not folder.exists()
