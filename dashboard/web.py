"""The dashboard's web layer: the pages (app.py) and Seedlab's HTTP routes, on one port.

`seedlab dashboard` and `seedlab up` start this file with `streamlit run`. Streamlit finds the
module-level `app` below (an `st.App`, which is an ASGI application) and serves it with uvicorn:
the pages exactly as `streamlit run dashboard/app.py` would, plus the routes in ROUTES, which are
matched first. This module is the one place HTTP routes are added:

- under /api/v1 (API_V1_ROUTES): the health check now; the SDK's API next (issue 19);
- beside /api (ROUTES): share links, the login that sets an HttpOnly cookie.

Everything under /api answers JSON, errors included: an unknown path is a JSON 404, not the
dashboard's page (which Streamlit serves for any other path). Paths under /_stcore/, /media/,
/component/ and /static/ belong to Streamlit; st.App refuses a route there.

Tests that drive the pages (AppTest) keep using app.py: AppTest runs a script, not an ASGI app.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

# `streamlit run dashboard/web.py` imports this file as the top-level module `web`, with
# dashboard/ on sys.path, not the repo root that holds the packages imported below.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402 (needs the sys.path entry above)
from sqlalchemy import Engine, text  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import BaseRoute, Mount, Route  # noqa: E402

import seedlab  # noqa: E402
from db import workers as worker_store  # noqa: E402
from db.session import get_db  # noqa: E402
from engine.core.errors import SeedlabError  # noqa: E402
from engine.core.settings import Settings  # noqa: E402
from engine.services.engine_status import WORKER_ALIVE_WITHIN_S  # noqa: E402

log = logging.getLogger("seedlab.web")

PAGES = Path(__file__).with_name("app.py")
API_PREFIX = "/api"
API_VERSION = "v1"


def health_report() -> dict[str, Any]:
    """Is this server usable: its version, whether the database answers, whether an engine worker
    beats. Read-only and cheap (two small queries, no torch), for monitors polling it often.

    `ok` follows the database alone: the pages need it, while a stopped engine only makes runs
    wait. Causes go to the log, not to the answer, which anyone who can reach the port may read
    (a database error can name its host or user)."""
    report: dict[str, Any] = {
        "ok": False,
        "version": seedlab.__version__,
        "database_reachable": False,
        "engine_alive": False,
    }
    try:
        db = get_db(Settings.from_env())
    except SeedlabError as exc:
        log.warning("health: the settings are not usable: %s", exc)
        return report
    report["database_reachable"] = _database_reachable(db)
    report["ok"] = report["database_reachable"]
    if report["database_reachable"]:
        report["engine_alive"] = _engine_alive(db)
    return report


def _database_reachable(db: Engine) -> bool:
    try:
        with db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "not reachable"; the log keeps the cause
        log.warning("health: the database did not answer", exc_info=True)
        return False
    return True


def _engine_alive(db: Engine) -> bool:
    # The Engine page's rule (engine/services/engine_status.py) without its stale-run settling:
    # a health check must not write.
    try:
        return bool(worker_store.live_workers(db, within_s=WORKER_ALIVE_WITHIN_S))
    except Exception:  # noqa: BLE001 - e.g. a database not migrated yet: no worker has beaten
        log.warning("health: could not read the workers table", exc_info=True)
        return False


def health(request: Request) -> JSONResponse:
    """GET /api/v1/health: 200 when the server is usable, 503 (same body) when it is not, so a
    load balancer or `curl --fail` needs no JSON parsing."""
    report = health_report()
    return JSONResponse(report, status_code=200 if report["ok"] else 503)


# The SDK's routes (runs logged over HTTP with a user's API token): dashboard/remote_api.py.
from dashboard import remote_api  # noqa: E402

# Each route here answers at /api/v1/<path>; a sync endpoint runs in Starlette's thread pool, so
# a blocking database call does not stall the pages' event loop.
API_V1_ROUTES: list[BaseRoute] = [
    Route("/health", health, methods=["GET"]),
    *remote_api.ROUTES,
]


async def _api_http_error(request: Request, exc: Exception) -> JSONResponse:
    """An unknown path or a wrong method under /api, as JSON rather than Starlette's plain text."""
    assert isinstance(exc, HTTPException)
    message = (
        f"No API route {request.url.path}: the API is under {API_PREFIX}/{API_VERSION}/."
        if exc.status_code == 404
        else f"{exc.detail}: {request.method} {request.url.path}."
    )
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _api_server_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback after this answer is sent; the caller gets one sentence.
    return JSONResponse(
        {"error": "The server failed on this request: its log says why."}, status_code=500
    )


# Its own Starlette app, so the JSON error handlers cover /api and nothing of Streamlit's.
api = Starlette(
    routes=[Mount(f"/{API_VERSION}", routes=API_V1_ROUTES)],
    exception_handlers={HTTPException: _api_http_error, Exception: _api_server_error},
)

ROUTES: list[BaseRoute] = [
    Mount(API_PREFIX, app=api),
]

# `streamlit run` finds this by its name and class (a module-level `app = st.App(...)`).
app = st.App(PAGES, routes=ROUTES)
