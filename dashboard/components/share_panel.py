"""The Admin page's "Share links" section: every live read-only link (who made it, what it
opens, when it expires, when it was last opened and how often), each with a Revoke button.

Through engine/services/share_links.py, which checks the role again (an admin lists and revokes
any link); `seedlab share list | revoke` does the same from a shell.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from engine.services import share_links as sharing
from engine.services.permissions import Permission


def show(db: Engine) -> None:
    st.subheader("Share links")
    links = sharing.list_live(db, auth.require(Permission.SHARE))
    if not links:
        st.caption(
            "No live share links. Make one with Share on a run, on Compare or in the Playground, "
            "or with `seedlab share run ID`."
        )
        return
    st.caption(
        "Links that open one view without a login. Revoke one and its next click shows the "
        "visitor that it was revoked."
    )
    widths = [1, 2, 3, 2, 2, 1, 1]
    header = ("link", "made by", "opens", "expires", "last opened", "opened", "")
    for col, title in zip(st.columns(widths), header, strict=True):
        col.caption(title)
    for link in links:
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].text(str(link.id))
        cols[1].text(link.created_by)
        cols[2].text(sharing.describe(link))
        cols[3].text("never" if link.expires_at is None else data.format_time(link.expires_at))
        cols[4].text(data.format_time(link.last_opened_at) if link.last_opened_at else "never")
        cols[5].text(f"{link.opens}×")
        if cols[6].button("Revoke", key=f"share_revoke_{link.id}", icon=":material/link_off:"):
            with data.shown_errors("revoking the link"):
                sharing.revoke(db, auth.require(Permission.SHARE), link.id)
                data.flash(f"Revoked link {link.id} to {sharing.describe(link)}.")
                st.rerun()
