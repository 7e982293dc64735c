"""Dashboard pages through Streamlit's AppTest (no browser; tests/e2e has the browser walk)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.support.commands import ROOT

APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 30  # seconds one script run of a page may take under AppTest


def open_page(page: str, **query: str) -> AppTest:
    """Render one page (a file path relative to app.py) with the given query parameters."""
    # The first run registers the st.navigation pages; before it, AppTest finds a page by its
    # file name only, which misses views/run_detail.py (its URL is /run).
    return go(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), page, **query)


def go(at: AppTest, page: str, **query: str) -> AppTest:
    """Move a session that has run once (and kept its login) to another page."""
    at.switch_page(page)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_tab(at: AppTest, name: str) -> AppTest:
    """Open another tab of a page whose tabs are bound to ?tab= (Run, Compare): only the open
    one is drawn, as clicking it in the browser does. Not for going back to the default (first)
    tab: ?tab= at its default value does not move a session off another tab (open the page
    anew)."""
    at.query_params["tab"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str) -> Any:  # noqa: ANN401 - AppTest's Button element
    """The page's first button labelled `label` (fails listing the buttons there are)."""
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def texts(elements: Iterable[Any]) -> str:
    """The values of AppTest elements (markdown, captions, errors…), one a line."""
    return "\n".join(str(e.value) for e in elements)


def trace_values(values: list | dict) -> list[float]:
    """A trace's x or y from the figure JSON: Plotly sends numpy arrays as base64 binary."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def plotly_figures(at: AppTest) -> list[dict]:
    """Every Plotly chart on the page, as its figure JSON."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def current_title(at: AppTest) -> str:
    return at.title[0].value
