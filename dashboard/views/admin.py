"""Admin: users (add, role, password, unlock, remove, their sessions), the audit log, and
storage (disk use, clean-up: dashboard/components/storage_panel.py). Admins only.

The same actions as `seedlab users …` and `seedlab audit list`, through
engine.services.accounts, which checks the role again whatever this page shows.
"""

import pandas as pd
import streamlit as st

from dashboard import auth, data
from dashboard.components import alerts_section, share_panel, storage_panel
from db import audit
from db import users as user_store
from engine.services import accounts
from engine.services import audit as audit_names
from engine.services.permissions import ROLES, Permission

auth.guard_page(Permission.VIEW_AUDIT)
db = data.get_db()

st.title("Admin")
data.show_flash()
users_tab, storage_tab, audit_tab, alerts_tab, share_tab = st.tabs(
    ["Users", "Storage", "Audit log", "Alerts", "Share links"]
)


def _users() -> None:
    users = user_store.list_users(db)
    if not users:
        st.info(
            "No users yet: access control is off while Seedlab serves localhost only. Add users "
            f"here or with `{accounts.FIRST_ADMIN_HINT}` before you open it to others "
            "(SEEDLAB_AUTH=on, or `seedlab up --address 0.0.0.0`)."
        )
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "name": u.name,
                        "role": u.role,
                        "created": data.local_time(u.created_at),
                        "last login": data.local_time(u.last_login_at),
                        "logins wait until": data.local_time(accounts.locked_until(db, u.name)),
                    }
                    for u in users
                ]
            ),
            hide_index=True,
        )
    left, right = st.columns(2)
    with left, st.form("user_add", clear_on_submit=True):
        st.subheader("Add a user")
        name = st.text_input("User name", max_chars=100)
        role = st.selectbox("Role", ROLES, index=ROLES.index("member"))
        password = st.text_input("Password", type="password", help="At least 8 characters")
        if st.form_submit_button("Add user", icon=":material/person_add:"):
            with data.shown_errors("adding the user"):
                accounts.add_user(db, auth.require(Permission.MANAGE_USERS), name, password, role)
                data.flash(f"Added {name.strip()} ({role}).")
                st.rerun()
    if not users:
        return
    with right, st.form("user_change"):
        st.subheader("Change a user")
        names = [u.name for u in users]
        who = st.selectbox("User", names)
        new_role = st.selectbox("New role", ("(keep)", *ROLES))
        new_password = st.text_input("New password", type="password", help="Empty: keep")
        cols = st.columns(3)
        save = cols[0].form_submit_button("Save", icon=":material/save:")
        unlock = cols[1].form_submit_button("Unlock", icon=":material/lock_open:")
        remove = cols[2].form_submit_button("Remove", icon=":material/person_remove:")
    if save:
        with data.shown_errors("changing the user"):
            actor = auth.require(Permission.MANAGE_USERS)
            if new_role != "(keep)":
                accounts.set_role(db, actor, who, new_role)
            if new_password:
                accounts.change_password(db, actor, who, new_password)
            data.flash(f"Saved {who}.")
            st.rerun()
    if unlock:
        with data.shown_errors("unlocking the user"):
            accounts.unlock_user(db, auth.require(Permission.MANAGE_USERS), who)
            data.flash(f"Unlocked {who}.")
            st.rerun()
    if remove:
        with data.shown_errors("removing the user"):
            accounts.remove_user(db, auth.require(Permission.MANAGE_USERS), who)
            data.flash(f"Removed {who}; their runs and datasets stay.")
            st.rerun()
    _sessions([u.name for u in users])


def _sessions(names: list[str]) -> None:
    """A user's open sessions, and ending them (a stolen cookie opens nothing after)."""
    actor = auth.require(Permission.MANAGE_USERS)
    st.subheader("Sessions")
    who = st.selectbox("Sessions of", names, key="sessions_of")
    open_sessions = accounts.list_sessions(db, actor, who)
    if not open_sessions:
        st.caption("No open session.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "session": s.id,
                    "from": s.address,
                    "started": data.local_time(s.created_at),
                    "last seen": data.local_time(s.last_seen_at),
                    "ends": data.local_time(s.expires_at),
                }
                for s in open_sessions
            ]
        ),
        hide_index=True,
    )
    cols = st.columns(2)
    chosen = cols[0].selectbox("Session", [s.id for s in open_sessions], key="session_pick")
    if cols[0].button("End this session", icon=":material/logout:"):
        with data.shown_errors("ending the session"):
            accounts.end_sessions(db, auth.require(Permission.MANAGE_USERS), who, chosen)
            data.flash(f"Ended session {chosen} of {who}.")
            st.rerun()
    if cols[1].button("End all their sessions", icon=":material/block:"):
        with data.shown_errors("ending the sessions"):
            ended = accounts.end_sessions(db, auth.require(Permission.MANAGE_USERS), who)
            data.flash(f"Ended {ended} session{'s' if ended != 1 else ''} of {who}.")
            st.rerun()


def _audit() -> None:
    cols = st.columns(3)
    user = cols[0].text_input("User", placeholder="all")
    action = cols[1].text_input("Action", placeholder="all (e.g. launch, delete)")
    limit = cols[2].number_input("Latest", min_value=10, max_value=10_000, value=200, step=50)
    entries = audit.list_entries(
        db, user=user.strip() or None, action=action.strip() or None, limit=int(limit)
    )
    if not entries:
        st.info("Nothing recorded yet (or nothing matches).")
        return
    names = {r.id: r.name for r in data.datasets()}
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": data.local_time(e.at),
                    "user": e.user,
                    "action": e.action,
                    "target": audit_names.name_datasets(e.target, names),
                    "detail": audit_names.name_datasets(e.detail, names),
                }
                for e in entries
            ]
        ),
        hide_index=True,
        column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )


with users_tab:
    if auth.can(Permission.MANAGE_USERS):
        _users()
with audit_tab:
    _audit()
with storage_tab, data.shown_errors("measuring storage"):
    storage_panel.show(db, data.get_settings())
with alerts_tab, data.shown_errors("reading the alerts"):
    alerts_section.show(db, data.get_settings())
with share_tab, data.shown_errors("listing the share links"):
    share_panel.show(db)  # live read-only links, Revoke: dashboard/components/share_panel.py
