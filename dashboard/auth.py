"""Access control for the pages: who is logged in, the login form, and the role checks.

Off for a single-user dashboard on localhost (everyone is the local admin); on when
SEEDLAB_AUTH=on or the dashboard binds a non-loopback address (engine.services.permissions).

Pages call `guard_page(...)` first. Every write is an engine.services function that checks the
permission itself and writes the audit entry; `require(...)` here only gets the acting user (and
refuses early, with the same sentence). Buttons a role cannot use are shown disabled, but that
is only a courtesy: a crafted click still meets the service's check.

Logging in is a plain HTML form posted to the /auth/login route (dashboard/web.py), which checks
the password and sets the session cookie: HttpOnly, so no script in the page can read it. The
cookie holds a random token of a server-side session (engine/services/accounts.py), checked at
every click; Log out revokes it at once.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.data import md_text
from engine.core.errors import SeedlabError
from engine.services import accounts
from engine.services.permissions import (
    ANY_OWNER,
    LOCAL_ADMIN,
    Actor,
    Permission,
    allowed,
    auth_required,
    check,
)

# The browser's session cookie (set by the /auth/login route; dashboard/web.py's SESSION_COOKIE).
COOKIE = "seedlab_session"
# A session token held server-side instead of the cookie: how AppTest, which cannot send a
# cookie, opens a logged-in page. A browser cannot set it (session state lives on the server).
SESSION_TOKEN = "_seedlab_session_token"


def auth_enabled() -> bool:
    try:
        address = st.get_option("server.address")
    except Exception:  # no Streamlit config (bare import)
        address = None
    return auth_required(address)


def _db():  # noqa: ANN202
    return data.get_db()


def _token() -> str | None:
    token = st.session_state.get(SESSION_TOKEN)
    if token:
        return token
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # no browser connection (bare script)
        return None
    return token if isinstance(token, str) else None  # AppTest's stand-in cookies are not


def current_user() -> Actor | None:
    """The acting user: the local admin when access control is off; else the user of this
    browser's open session, read fresh from the DB at every click (so a logout elsewhere, a
    removed user, a new role or a new password applies at once), or None."""
    if not auth_enabled():
        return LOCAL_ADMIN
    if st.session_state.get("_seedlab_logged_out"):
        return None
    token = _token()
    actor = accounts.session_actor(_db(), token)
    if actor is None and token:
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

# Static markup (no user text): a form the browser posts to /auth/login, which answers with the
# HttpOnly cookie and sends the browser back here. Labels name the fields for screen readers.
# The field names are prefixed: st.html's sanitizer (DOMPurify) drops a name such as "name"
# that shadows a property of the form element (DOM clobbering), and the field would be lost.
_LOGIN_FORM = """
<form method="post" action="/auth/login" style="max-width:24rem">
  <label for="seedlab-name" style="display:block;margin:.5rem 0 .25rem">User name</label>
  <input id="seedlab-name" name="seedlab_user" autocomplete="username" required maxlength="100"
    style="width:100%;padding:.5rem;border:1px solid #ccc;border-radius:.5rem">
  <label for="seedlab-password" style="display:block;margin:.75rem 0 .25rem">Password</label>
  <input id="seedlab-password" name="seedlab_password" type="password"
    autocomplete="current-password" required
    style="width:100%;padding:.5rem;border:1px solid #ccc;border-radius:.5rem">
  <button type="submit" style="margin-top:1rem;padding:.5rem 1.25rem;border:none;
    border-radius:.5rem;background:#ff4b4b;color:white;font-weight:600">Log in</button>
</form>
"""


def _login_answer() -> str | None:
    """The sentence for the route's answer in the query (?login=wrong or ?login=wait&minutes=N)."""
    answer = st.query_params.get("login")
    if answer == "wrong":
        return accounts.WRONG
    if answer == "wait":
        minutes = st.query_params.get("minutes", "")
        return accounts.wait_sentence(int(minutes) if minutes.isdigit() else 15)
    return None


def login_gate() -> Actor | None:
    """In app.py before the pages: the user, or the login form (and None) when none yet."""
    actor = current_user()
    if actor is not None:
        return actor
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
    answer = _login_answer()
    if answer:
        st.error(answer, icon=":material/lock:")
    elif note:
        st.info(note)
    st.subheader("Log in")
    st.html(_LOGIN_FORM)
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
    """End this browser's session on the server at once: its cookie opens nothing any more, in
    this tab or any other (the next login replaces the cookie)."""
    accounts.end_session(_db(), _token())
    st.session_state.pop(SESSION_TOKEN, None)
    st.session_state["_seedlab_logged_out"] = True
    st.rerun()
