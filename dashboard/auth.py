"""Access control for the pages: who is logged in, the login form, and the role checks.

Off for a single-user dashboard on localhost (everyone is the local admin); on when
SEEDLAB_AUTH=on or the dashboard binds a non-loopback address (engine.services.permissions).

Pages call `guard_page(...)` first. Every write is an engine.services function that checks the
permission itself and writes the audit entry; `require(...)` here only gets the acting user (and
refuses early, with the same sentence). Buttons a role cannot use are shown disabled, but that
is only a courtesy: a crafted click still meets the service's check.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.data import md_text
from engine.core.errors import SeedlabError
from engine.services import accounts, session_tokens
from engine.services.permissions import (
    ANY_OWNER,
    LOCAL_ADMIN,
    Actor,
    Permission,
    allowed,
    auth_required,
    check,
)

_SESSION = "_seedlab_login"  # {"name", "at" (login time, UTC), "stamp" (password_changed_at)}


def auth_enabled() -> bool:
    try:
        address = st.get_option("server.address")
    except Exception:  # no Streamlit config (bare import)
        address = None
    return auth_required(address)


def _db():  # noqa: ANN202
    return data.get_db()


def current_user() -> Actor | None:
    """The acting user: the local admin when access control is off; else the logged-in user,
    read fresh from the DB (so a removed user, a role change or a new password applies at the
    next click), or None."""
    if not auth_enabled():
        return LOCAL_ADMIN
    login = st.session_state.get(_SESSION) or _login_from_cookie()
    if not login:
        return None
    actor = accounts.session_actor(_db(), login["name"], login["at"], login["stamp"])
    if actor is None:
        st.session_state.pop(_SESSION, None)
        st.session_state["_seedlab_login_note"] = "Your session ended; log in again."
    return actor


def can(permission: Permission, owner: str | None | object = ANY_OWNER) -> bool:
    """For showing a button enabled or not; the action itself must still call `require`.
    Without `owner`: whether the role may do this to anything (its own, for a member)."""
    return allowed(current_user(), permission, owner)


def require(
    permission: Permission, owner: str | None | object = ANY_OWNER, what: str = ""
) -> Actor:
    """The acting user, or PermissionDenied (a SeedlabError: `data.shown_errors` shows it as a
    sentence) when they may not do this (to a thing of `owner`, when given). A courtesy: the
    engine.services function the action calls checks again, and that check is the one that
    counts."""
    actor = current_user()
    check(actor, permission, owner, what)
    return actor  # type: ignore[return-value]  (check refused None)


def guard_page(permission: Permission = Permission.BROWSE) -> Actor:
    """First line of every page: stop it with a sentence unless the user may see it."""
    actor = current_user()
    try:
        check(actor, permission)
    except SeedlabError as exc:
        st.error(str(exc), icon=":material/lock:")
        st.stop()
    return actor  # type: ignore[return-value]


# ---------------------------------------------------------------- login, logout


COOKIE = "seedlab_session"


def _key() -> bytes:
    return session_tokens.secret_key(data.get_settings().home)


def _login_from_cookie() -> dict | None:
    """A login carried over from another tab or before a reload, by the signed cookie (never
    after this session logged out: the browser's old cookie is still in this connection)."""
    if st.session_state.get("_seedlab_logged_out"):
        return None
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # no browser connection (bare script, AppTest)
        return None
    found = session_tokens.read(_key(), token)
    if found is None:
        return None
    name, at, stamp = found
    login = {"name": name, "at": at, "stamp": stamp, "cookie": True}
    st.session_state[_SESSION] = login
    return login


def _set_cookie(value: str, max_age_s: int) -> None:
    # st.context.cookies only reads; the browser writes the cookie. SameSite=Strict: no other
    # site's page can send it along.
    st.html(
        f"<script>document.cookie = '{COOKIE}={value}; path=/; max-age={max_age_s}; "
        "SameSite=Strict';</script>",
        unsafe_allow_javascript=True,
    )


def login_gate() -> Actor | None:
    """In app.py before the pages: the user, or the login form (and None) when none yet."""
    actor = current_user()
    if actor is not None:
        login = st.session_state.get(_SESSION)
        if login and not login.get("cookie"):  # just logged in here: let other tabs share it
            token = session_tokens.issue(_key(), login["name"], login["at"], login["stamp"])
            _set_cookie(token, int(accounts.session_lifetime().total_seconds()))
            login["cookie"] = True
        return actor
    if st.session_state.pop("_seedlab_clear_cookie", False):
        _set_cookie("", 0)
    st.title("Seedlab")
    db = _db()
    if not accounts.has_users(db):
        st.warning(
            "Access control is on and there are no users yet. On the machine that runs "
            f"Seedlab, create the first admin:\n\n`{accounts.FIRST_ADMIN_HINT}`\n\n"
            "then reload this page.",
            icon=":material/person_add:",
        )
        return None
    note = st.session_state.pop("_seedlab_login_note", None)
    if note:
        st.info(note)
    with st.form("login"):
        st.subheader("Log in")
        name = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary", icon=":material/login:")
    if submitted:
        try:
            actor = accounts.authenticate(db, name, password)
        except SeedlabError as exc:
            st.error(str(exc), icon=":material/lock:")
            return None
        from db.session import utcnow

        st.session_state.pop("_seedlab_logged_out", None)
        st.session_state[_SESSION] = {
            "name": actor.name,
            "at": utcnow(),
            "stamp": accounts.session_stamp(db, actor.name),
        }
        st.rerun()
    return None


def user_menu(actor: Actor) -> None:
    """Sidebar: who is logged in, and the logout button (nothing when access control is off)."""
    if not auth_enabled():
        return

    with st.sidebar:
        st.caption(f"Logged in as **{md_text(actor.name)}** ({actor.role})")
        if st.button("Log out", icon=":material/logout:", key="logout"):
            logout()


def logout() -> None:
    login = st.session_state.pop(_SESSION, None)
    st.session_state["_seedlab_logged_out"] = True
    st.session_state["_seedlab_clear_cookie"] = True
    if login:
        accounts.record_logout(_db(), login["name"])
    st.rerun()
