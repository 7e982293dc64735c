"""The Run page's edit panel: name, tags, note, archive, and delete with a confirmation.

Disabled for whoever may not change this run (only its owner or an admin may); each button
checks again on the server, so a crafted click is refused all the same.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from db.records import RunRecord
from engine.services import runs as run_actions
from engine.services.permissions import Permission


def edit_panel(db: Engine, run: RunRecord) -> None:
    what = f"run {run.id}"
    may_edit = auth.can(Permission.EDIT, run.owner)
    may_delete = auth.can(Permission.DELETE, run.owner)
    with st.expander("Edit: name, tags, note, archive, delete", icon=":material/edit:"):
        if not may_edit:
            st.caption("Only the run's owner or an admin can change it.")
        with st.form(f"edit_run_{run.id}", border=False):
            name = st.text_input("Name", value=run.name, max_chars=200)
            tags = st.text_input(
                "Tags (comma separated)", value=", ".join(run.tags), help="e.g. baseline, keep"
            )
            notes = st.text_area("Note", value=run.notes, placeholder="What this run tried")
            if st.form_submit_button("Save", icon=":material/save:", disabled=not may_edit):
                with data.shown_errors("saving the run"):
                    actor = auth.require(Permission.EDIT, run.owner, what)
                    run_actions.edit_run(
                        db, actor, run.id, name=name, tags=tags.split(","), notes=notes
                    )
                    data.flash("Saved.")
                    st.rerun()
        with st.container(horizontal=True):
            label = "Unarchive" if run.archived else "Archive"
            if st.button(
                label, icon=":material/archive:", key="run_archive", disabled=not may_edit
            ):
                with data.shown_errors("archiving the run"):
                    actor = auth.require(Permission.EDIT, run.owner, what)
                    run_actions.set_archived(db, actor, [run.id], not run.archived)
                    data.flash(f"{label}d.")
                    st.rerun()
            active = run.status in data.ACTIVE_STATUSES
            confirm = st.checkbox(
                "I want to delete this run and its files",
                key="run_delete_confirm",
                disabled=active or not may_delete,
                help="Cancel an active run first." if active else None,
            )
            if st.button(
                "Delete",
                icon=":material/delete:",
                type="primary",
                disabled=not confirm,
                key="run_delete",
            ):
                with data.shown_errors("deleting the run"):
                    actor = auth.require(Permission.DELETE, run.owner, what)
                    run_actions.delete_run(data.get_settings(), db, actor, run.id)
                    data.flash(f"Deleted run #{run.id} and its files.")
                    st.switch_page(data.RUNS_PAGE)
        if run.archived:
            st.caption("Archived: hidden from the Runs list unless 'Archived too' is on.")
