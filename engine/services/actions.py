"""Transitional: the user actions that were here now live by concern, each checked and audited:

- services/runs.py: launch, cancel, resume, edit (name, tags, note, archive), delete, HTML report
- services/datasets.py: upload, add a file, the demo datasets, delete
- services/projects.py: create a project
- services/sweep_actions.py: launch, cancel, launch best
- services/model_registry.py: register, promote, unregister
- services/accounts.py: users (add, role, password, unlock, remove)

engine/cli/* (restructured on another branch during issue 17) still imports these names from
here; once it imports them from the modules above, delete this file.
"""

from __future__ import annotations

from engine.services.datasets import (
    add_dataset_file,
    add_demo_datasets,
    delete_dataset,
    upload_dataset,
)
from engine.services.projects import create_project
from engine.services.runs import (
    cancel_run,
    check_run,
    delete_run,
    edit_runs,
    launch_run,
    rename_run,
    resume,
    set_archived,
)
from engine.services.sweep_actions import cancel_sweep, launch_best, launch_sweep

__all__ = [
    "add_dataset_file",
    "add_demo_datasets",
    "cancel_run",
    "cancel_sweep",
    "check_run",
    "create_project",
    "delete_dataset",
    "delete_run",
    "edit_runs",
    "launch_best",
    "launch_run",
    "launch_sweep",
    "rename_run",
    "resume",
    "set_archived",
    "upload_dataset",
]
