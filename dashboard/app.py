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

st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/datasets.py", title="Datasets", icon=":material/table:"),
        st.Page("pages/new_run.py", title="New run", icon=":material/add_circle:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/list:"),
        st.Page("pages/run_detail.py", title="Run", icon=":material/monitoring:", url_path="run"),
    ]
).run()
