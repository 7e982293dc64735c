"""API tokens: a user's tokens for the HTTP API, so the SDK logs runs from another machine
(SEEDLAB_URL + SEEDLAB_TOKEN). Make one (shown once), see them, revoke one.

Everyone manages their own tokens; an admin anyone's. The same actions as `seedlab users
token|tokens|revoke`, through engine.services.api_tokens, which checks again whatever this page
shows. A token acts with its user's role: a viewer's token cannot log runs.
"""

import pandas as pd
import streamlit as st

from dashboard import auth, data
from db import users as user_store
from engine.services import api_tokens
from engine.services.permissions import Permission

actor = auth.guard_page(Permission.BROWSE)
db = data.get_db()

st.title("API tokens")
data.show_flash()
st.markdown(
    "Log runs from your own code on another machine: set `SEEDLAB_URL` to this server's "
    "address and `SEEDLAB_TOKEN` to a token, then `seedlab.init(...)` logs here, as you."
)

admin = auth.can(Permission.MANAGE_USERS)
names = [u.name for u in user_store.list_users(db)] if admin else [actor.name]
if not names:
    st.info(
        "Tokens belong to users, and there are none yet: add one on the Admin page or with "
        "`seedlab users add NAME`."
    )
    st.stop()
if not auth.can(Permission.LAUNCH):
    st.caption(
        f"Your role ({actor.role}) cannot log runs: a token of yours reads, it cannot write."
    )

with st.form("token_add", clear_on_submit=True):
    st.subheader("Make a token")
    default = names.index(actor.name) if actor.name in names else 0
    user = st.selectbox("For user", names, index=default, disabled=not admin)
    label = st.text_input("Label", max_chars=api_tokens.LABEL_MAX, placeholder="e.g. gpu-box-2")
    made = st.form_submit_button("Make token", icon=":material/key:")
if made:
    with data.shown_errors("making the token"):
        token = api_tokens.create_token(db, auth.require(Permission.BROWSE), user, label)
        st.success(f"Token for {user}: copy it now, it is not shown again.")
        st.code(token, language=None)

tokens = api_tokens.list_tokens(db, actor)
if not tokens:
    st.info("No tokens yet.")
    st.stop()
st.subheader("Tokens")
st.dataframe(
    pd.DataFrame(
        [
            {
                "id": t.id,
                "user": t.user,
                "token": f"{t.prefix}…",
                "label": t.label,
                "created": data.local_time(t.created_at),
                "last used": data.local_time(t.last_used_at),
            }
            for t in tokens
        ]
    ),
    hide_index=True,
)
by_id = {t.id: t for t in tokens}
cols = st.columns([3, 1], vertical_alignment="bottom")
chosen = cols[0].selectbox(
    "Token to revoke",
    list(by_id),
    format_func=lambda i: f"{i}: {by_id[i].user}, {by_id[i].prefix}… {by_id[i].label}".strip(),
)
if cols[1].button("Revoke", icon=":material/key_off:"):
    with data.shown_errors("revoking the token"):
        api_tokens.revoke_token(db, auth.require(Permission.BROWSE), chosen)
        data.flash(f"Token {chosen} revoked: it stops working at once.")
        st.rerun()
