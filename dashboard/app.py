"""Seedlab dashboard entry point: page setup and routing only; each page is its own file."""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repo root that holds
# the db/ and engine/ packages the pages import.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

st.set_page_config(page_title="Seedlab", page_icon=":material/science:", layout="wide")

from dashboard import auth, data, share_view  # noqa: E402 (needs the sys.path entry above)
from engine.services.permissions import Permission  # noqa: E402

# A bad SEEDLAB_* value: its sentence as the page, before anything reads the settings.
data.get_settings()
# A read-only share link (/?share=TOKEN, any path): its one view and nothing else, without a
# login, before the gate and the pages (dashboard/share_view.py).
if share_view.is_share_session():
    share_view.show()
    st.stop()
# Access control (off on localhost): no user, no pages — only the login form.
actor = auth.login_gate()
if actor is None:
    st.stop()

# The page files live in views/, not pages/: a folder named pages/ beside the entry script
# switches Streamlit into its legacy multipage mode, which wraps this file as one page of its
# own and, on a deep link such as /run?run=7, runs the page file alone (no page config, the
# wrong sidebar, or a "Page not found" dialog).
pages = st.navigation(
    [
        st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("views/datasets.py", title="Datasets", icon=":material/table:"),
        st.Page("views/new_run.py", title="New run", icon=":material/add_circle:"),
        st.Page("views/runs.py", title="Runs", icon=":material/list:"),
        st.Page("views/run_detail.py", title="Run", icon=":material/monitoring:", url_path="run"),
        st.Page("views/sweeps.py", title="Sweeps", icon=":material/tune:"),
        st.Page("views/engine.py", title="Engine", icon=":material/memory:"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("views/playground.py", title="Playground", icon=":material/smart_toy:"),
        st.Page("views/models.py", title="Models", icon=":material/inventory_2:"),
        st.Page("views/tokens.py", title="API tokens", icon=":material/key:"),
    ]
    + (
        [st.Page("views/admin.py", title="Admin", icon=":material/admin_panel_settings:")]
        if auth.can(Permission.VIEW_AUDIT)
        else []
    )
)
auth.user_menu(actor)
from dashboard.components.projects import project_picker  # noqa: E402 (needs the sys.path entry above)

project_picker()
pages.run()
