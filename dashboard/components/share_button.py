"""The Share button of the Run, Compare and Playground pages: a read-only link to that one view
for someone without an account (engine/services/share_links.py).

A popover: how long the link works (1 day, 7 days, 30 days, never) and "Create link", which
shows the URL once, in a code box with a copy button (only the token's hash is kept, so it
cannot be shown again). Disabled for roles that cannot share (viewers); the service checks the
role again. The link starts with SEEDLAB_PUBLIC_URL, else with the address this browser used.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from dashboard import auth, data
from engine.services import share_links as sharing
from engine.services.permissions import Permission

_WHAT = {
    "run": "this run's page (results, curves, evaluation)",
    "compare": "these runs side by side (curves and metrics)",
    "model": "this model's Playground (one prediction at a time, a limited number a minute)",
}


def base_url() -> str:
    """Where links start: SEEDLAB_PUBLIC_URL, else the scheme and host this browser used."""
    public = data.get_settings().public_url
    if public:
        return public
    try:
        seen = urlsplit(st.context.url or "")
    except Exception:  # no browser connection (bare script)
        seen = urlsplit("")
    if not seen.scheme or not seen.netloc:
        return sharing.LOCAL_URL
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{seen.scheme}://{seen.netloc}" + (f"/{prefix}" if prefix else "")


def share_button(kind: str, target: int | str | list[int], *, key: str) -> None:
    """A Share popover for `kind` ("run", "compare", "model") and its `target` (a run id, run
    ids, a model name, or a run id for the model of an unregistered run)."""
    may = auth.can(Permission.SHARE)
    with st.popover(
        "Share",
        icon=":material/link:",
        disabled=not may,
        help="A read-only link that opens without logging in."
        if may
        else "Your role cannot make share links; a member or an admin can.",
    ):
        st.caption(
            f"Anyone with the link sees {_WHAT[kind]}, read-only and without logging in, and "
            "nothing else of Seedlab. Admins list and revoke links on the Admin page."
        )
        expiry = st.selectbox(
            "The link works for", list(sharing.EXPIRY_CHOICES), index=1, key=f"{key}_expiry"
        )
        if st.button("Create link", key=f"{key}_create", type="primary", disabled=not may):
            with data.shown_errors("making the link"):
                actor = auth.require(Permission.SHARE)
                made = sharing.create(
                    data.get_db(), actor, kind, target, sharing.EXPIRY_CHOICES[expiry]
                )
                base = base_url()
                st.code(sharing.share_url(made.token, base), language=None)
                st.caption(
                    f"Link {made.link.id}; it {sharing.expiry_text(made.link.expires_at)}. Copy it "
                    "now: it is shown only once."
                    + ("" if data.get_settings().public_url else " " + sharing.PUBLIC_URL_HINT)
                )
