"""The Models page's "Serve over HTTP" switch for one registered model: turn serving of its
production version on or off, the URL and a curl example, the token (shown once, after turning
serving on or "Rotate token"), and the recent requests with their latency (p50/p95).

The checks and writes are engine/services/serving.py's; the routes that answer are
dashboard/serve_api.py's, served by this dashboard (and by `seedlab models serve`).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from db.registry import RegisteredModel
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import serving
from engine.services.permissions import Permission

# Where a new token waits for the next run of the page, which shows it once.
_NEW_TOKEN = "serve_new_token_{}"
DEFAULT_BASE = "http://localhost:8501"


def base_url(settings: Settings) -> str:
    """SEEDLAB_PUBLIC_URL, else the address this browser used to reach the dashboard."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    url = urlsplit(st.context.url or "")
    return f"{url.scheme}://{url.netloc}" if url.scheme and url.netloc else DEFAULT_BASE


@st.cache_data(max_entries=32, show_spinner=False)
def _example(home: str, run_id: int) -> str:
    # Keyed on the home too: one process, several homes (tests). Loads the model (torch) once.
    return json.dumps(serving.example_for_run(data.get_settings(), run_id))


def show(db: Engine, model: RegisteredModel) -> None:
    served = serving.served(db, model.name)
    on = served is not None and served.enabled
    may = auth.can(Permission.SERVE)
    if model.production is None and not on:
        st.caption(
            "Serve over HTTP: promote a version to production first; the served model answers "
            "from its production version."
        )
        return
    wanted = st.toggle(
        "Serve over HTTP",
        value=on,
        key=f"serve_toggle_{model.name}",
        disabled=not may,
        help="The production version answers predictions at a URL, behind this model's own "
        "token, with a rate limit; promoting another version switches it at the next request."
        + ("" if may else " Your role cannot turn this on or off (a member or admin can)."),
    )
    if wanted != on:
        with data.shown_errors("changing whether the model is served"):
            actor = auth.require(Permission.SERVE, what=f"model {model.name}")
            if wanted:
                token = serving.enable(db, actor, model.name)
                if token:
                    st.session_state[_NEW_TOKEN.format(model.name)] = token
                data.flash(f"{data.md_text(model.name)} is served over HTTP.")
            else:
                serving.disable(db, actor, model.name)
                data.flash(f"{data.md_text(model.name)} is no longer served; requests get 404.")
            st.rerun()
    if not on:
        return
    _details(db, model, may)


def _details(db: Engine, model: RegisteredModel, may: bool) -> None:
    settings = data.get_settings()
    url = serving.endpoint(base_url(settings), model.name)
    token = st.session_state.pop(_NEW_TOKEN.format(model.name), None)
    if model.production is None:
        st.warning(
            "Nothing is in production now, so requests get 404: promote a version.",
            icon=":material/warning:",
        )
    if token:
        st.warning(
            "The model's token, shown only this once: copy it now. Anyone with it can ask the "
            "model for predictions.",
            icon=":material/key:",
        )
        st.code(token, language=None)
    try:
        example = _example(str(settings.home), model.production.run_id) if model.production else ""
    except (SeedlabError, ValueError):  # the model file is gone or bad: requests get 503
        example = '{"rows": [{"column": 1.5}]}'
    st.markdown(f"Predict at `{url}`")
    st.code(serving.curl_example(url, example, token or "$SEEDLAB_MODEL_TOKEN"), language="bash")
    if st.button(
        "Rotate token",
        key=f"serve_rotate_{model.name}",
        icon=":material/autorenew:",
        disabled=not may,
        help="A new token; the old one stops working at once.",
    ):
        with data.shown_errors("making a new token"):
            actor = auth.require(Permission.SERVE, what=f"model {model.name}")
            st.session_state[_NEW_TOKEN.format(model.name)] = serving.rotate_token(
                db, actor, model.name
            )
            data.flash("A new token is made; the old one no longer works.")
            st.rerun()
    _requests(db, model.name)


def _requests(db: Engine, name: str) -> None:
    figures = serving.latency(db, name)
    count, p50, p95 = st.columns(3)
    count.metric("Requests logged", f"{figures.requests:,}")
    p50.metric("Latency p50", "—" if figures.p50_ms is None else f"{figures.p50_ms:.1f} ms")
    p95.metric("Latency p95", "—" if figures.p95_ms is None else f"{figures.p95_ms:.1f} ms")
    recent = serving.recent_requests(db, name, 50)
    if not recent:
        st.caption("No requests yet.")
        return
    frame = pd.DataFrame(
        {
            "at": [data.local_time(r.at) for r in recent],
            "version": [r.version for r in recent],
            "status": [r.status for r in recent],
            "latency (ms)": [r.latency_ms for r in recent],
            "items": [r.items for r in recent],
            "client": [r.client for r in recent],
            "error": [r.error for r in recent],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        placeholder="—",
        column_config={
            "at": st.column_config.DatetimeColumn("at", format="YYYY-MM-DD HH:mm:ss"),
            "version": st.column_config.NumberColumn("version", format="v%d"),
            "latency (ms)": st.column_config.NumberColumn("latency (ms)", format="%.1f"),
        },
    )
