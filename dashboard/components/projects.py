"""The project picker in the sidebar: which project the Runs page and New run form work in.

The choice lives in the session and, when it is not "Default", in the URL (?project=NAME), so a
shared link opens the same project.
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from db import projects as project_store
from db.models import DEFAULT_PROJECT_ID
from db.projects import ProjectRecord
from engine.core.errors import SeedlabError
from engine.services.permissions import Permission
from engine.services.projects import create_project

_CURRENT = "_seedlab_project_id"
_PICK = "project_pick"


def current_project_id() -> int:
    return int(st.session_state.get(_CURRENT, DEFAULT_PROJECT_ID))


def _select(project: ProjectRecord) -> None:
    st.session_state[_CURRENT] = project.id
    if project.id == DEFAULT_PROJECT_ID:
        st.query_params.pop("project", None)
    else:
        st.query_params["project"] = project.name


def project_picker() -> None:
    """Sidebar select box of projects, plus a form to create one."""
    db = data.get_db()
    projects = project_store.list_projects(db)
    by_id = {p.id: p for p in projects}
    wanted = st.query_params.get("project")
    from_url = next((p for p in projects if p.name == wanted), None) if wanted else None
    if from_url is not None:
        st.session_state[_CURRENT] = from_url.id
    current = by_id.get(current_project_id()) or by_id[DEFAULT_PROJECT_ID]
    _select(current)
    st.session_state[_PICK] = current.id

    def on_pick() -> None:
        _select(by_id[st.session_state[_PICK]])

    st.sidebar.selectbox(
        "Project",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} ({by_id[i].n_runs:,} runs)",
        key=_PICK,
        on_change=on_pick,
        help="Runs belong to a project; Runs and New run work in the one chosen here.",
    )
    if not auth.can(Permission.CREATE_PROJECT):
        return
    with st.sidebar.popover("New project", icon=":material/create_new_folder:"):
        name = st.text_input("Name", key="project_new_name", max_chars=200)
        if st.button("Create project", key="project_create"):
            try:
                project_id = create_project(db, auth.require(Permission.CREATE_PROJECT), name)
            except (SeedlabError, ValueError) as exc:
                st.error(data.md_message(str(exc)))
            else:
                _select(project_store.get_project(db, project_id))
                st.rerun()
