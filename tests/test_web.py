"""The web layer (dashboard/web.py) as a client meets it: `seedlab dashboard` serves the pages and
the HTTP routes on one port; /api answers JSON, errors included."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import seedlab
from db.session import get_db
from db.writes import workers as worker_writes
from engine.core.settings import Settings
from tests.support.commands import ROOT, child_env, seedlab_cmd
from tests.support.web import Server, free_port, page_elements, start_server, stop_server

pytestmark = pytest.mark.slow  # each server start imports Streamlit and the pages: ~5-10 s


def _get(url: str, method: str = "GET") -> tuple[int, str, str]:
    """Status, content type and body, for error statuses too."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`seedlab dashboard` on a free port, as `make dashboard` starts it, with its own home."""
    home = tmp_path_factory.mktemp("web") / "home"
    env = child_env()
    env["SEEDLAB_HOME"] = str(home)
    env.pop("SEEDLAB_DB_URL", None)
    running = start_server(seedlab_cmd("dashboard"), env, home)
    yield running
    stop_server(running.proc)


def _db(home: Path):  # noqa: ANN202 - an Engine
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEDLAB_HOME", str(home))
        patch.delenv("SEEDLAB_DB_URL", raising=False)
        return get_db(Settings.from_env())


def test_health_says_version_database_and_engine(server: Server):
    status, kind, body = _get(f"{server.url}/api/v1/health")
    assert status == 200 and kind == "application/json"
    assert json.loads(body) == {
        "ok": True,
        "version": seedlab.__version__,
        "database_reachable": True,
        "engine_alive": False,  # no worker runs
    }

    # A worker that beats now: the engine is alive, by the Engine page's rule.
    db = _db(server.home)
    worker_writes.register_worker(db, "w-web", hostname="here", pid=os.getpid(), max_concurrent=1)
    try:
        assert json.loads(_get(f"{server.url}/api/v1/health")[2])["engine_alive"] is True
    finally:
        worker_writes.mark_stopped(db, "w-web")
    assert json.loads(_get(f"{server.url}/api/v1/health")[2])["engine_alive"] is False


def test_api_errors_are_json(server: Server):
    for path in ("/api/v1/x", "/api/v1/health/x", "/api/v2/health", "/api/"):
        status, kind, body = _get(f"{server.url}{path}")
        assert (status, kind) == (404, "application/json"), path
        assert json.loads(body)["error"].startswith("No API route"), body

    status, kind, body = _get(f"{server.url}/api/v1/health", method="POST")
    assert (status, kind) == (405, "application/json")
    assert json.loads(body) == {"error": "Method Not Allowed: POST /api/v1/health."}


def test_pages_are_served_beside_the_routes(server: Server):
    # Any other path is Streamlit's: the page shell, and a deep link of the pages.
    for path in ("/", "/run?run=1"):
        status, kind, body = _get(f"{server.url}{path}")
        assert status == 200 and kind.startswith("text/html"), path
        assert '<div id="root">' in body

    # The home page itself runs over the websocket, as a browser drives it, without an error.
    finished, elements = page_elements(server.url)
    assert finished == "FINISHED_SUCCESSFULLY"
    assert "exception" not in elements
    assert "markdown" in elements


def test_health_is_503_when_the_database_does_not_answer(tmp_path: Path):
    # No `seedlab dashboard` here: it migrates the database first and stops when it cannot.
    env = child_env()
    env["SEEDLAB_HOME"] = str(tmp_path / "home")
    env["SEEDLAB_DB_URL"] = f"postgresql+psycopg://seedlab@127.0.0.1:{free_port()}/seedlab"
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "web.py")]
    running = start_server(cmd, env, tmp_path / "home")
    try:
        status, kind, body = _get(f"{running.url}/api/v1/health")
    finally:
        stop_server(running.proc)
    assert (status, kind) == (503, "application/json")
    answer = json.loads(body)
    assert answer["ok"] is False and answer["database_reachable"] is False
    assert answer["engine_alive"] is False
    assert "127.0.0.1" not in body  # the cause goes to the server's log, not to the caller


def test_chart_pages_import_the_charting_code_with_their_html(server: Server):
    """dashboard/preload.py: Home, Run, Compare and Sweeps start loading Plotly's module as the
    page loads (gzip asked for or not); other pages and the module itself are left as served."""
    from dashboard.preload import preload_tag

    tag = preload_tag().decode()
    assert tag.startswith('<script type="module">import("./static/js/PlotlyChart.')
    for path in ("/", "/run?run=1", "/compare", "/sweeps"):
        request = urllib.request.Request(f"{server.url}{path}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as r:
            html = r.read().decode()
            assert r.headers.get("content-encoding") is None, path
            assert int(r.headers["content-length"]) == len(html.encode()), path
        assert html.count(tag) == 1 and html.index(tag) < html.index("</head>"), path
    status, _, html = _get(f"{server.url}/datasets")
    assert status == 200 and "<html" in html and tag not in html
    module = tag.split('import("./')[1].split('")')[0]
    status, kind, body = _get(f"{server.url}/{module}")
    assert status == 200 and "javascript" in kind and len(body) > 1_000_000
