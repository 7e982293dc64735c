"""The dashboard's web layer: the pages (app.py) and Seedlab's HTTP routes, on one port.

`seedlab dashboard` and `seedlab up` start this file with `streamlit run`. Streamlit finds the
module-level `app` below (an `st.App`, which is an ASGI application) and serves it with uvicorn:
the pages exactly as `streamlit run dashboard/app.py` would, plus the routes in ROUTES, which are
matched first. This module is the one place HTTP routes are added:

- under /api/v1 (API_V1_ROUTES): the health check, the SDK's remote logging API
  (dashboard/remote_api.py) and served models' predictions (dashboard/serve_api.py);
- beside /api (ROUTES): /auth/login and /auth/logout, which set and clear the session cookie
  (HttpOnly: page scripts cannot read it; only a route can set such a cookie).

Share links are no route: `/?share=TOKEN` is a page run that app.py hands to
dashboard/share_view.py before the login gate.

Everything under /api answers JSON, errors included: an unknown path is a JSON 404, not the
dashboard's page (which Streamlit serves for any other path). Paths under /_stcore/, /media/,
/component/ and /static/ belong to Streamlit; st.App refuses a route there.

Tests that drive the pages (AppTest) keep using app.py: AppTest runs a script, not an ASGI app.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

# `streamlit run dashboard/web.py` imports this file as the top-level module `web`, with
# dashboard/ on sys.path, not the repo root that holds the packages imported below.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402 (needs the sys.path entry above)
from sqlalchemy import Engine, text  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, RedirectResponse, Response  # noqa: E402
from starlette.routing import BaseRoute, Mount, Route  # noqa: E402

import seedlab  # noqa: E402
from dashboard.forwarded import (  # noqa: E402
    client_address,  # noqa: F401 (the routes' and the tests' name for it)
    is_trusted,
    served_over_https,
)
from dashboard.json_errors import json_error_handlers  # noqa: E402
from dashboard.preload import PreloadCharts  # noqa: E402
from db import workers as worker_store  # noqa: E402
from db.session import get_db  # noqa: E402
from engine.core.errors import SeedlabError  # noqa: E402
from engine.core.settings import Settings, proxy_networks  # noqa: E402
from engine.services import accounts  # noqa: E402
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
# Served models (predictions with a model's own token): dashboard/serve_api.py.
from dashboard import remote_api, serve_api  # noqa: E402

# Each route here answers at /api/v1/<path>; a sync endpoint runs in Starlette's thread pool, so
# a blocking database call does not stall the pages' event loop.
API_V1_ROUTES: list[BaseRoute] = [
    Route("/health", health, methods=["GET"]),
    *remote_api.ROUTES,
    *serve_api.ROUTES,
]


# Its own Starlette app, so the JSON error handlers cover /api and nothing of Streamlit's.
api = Starlette(
    routes=[Mount(f"/{API_VERSION}", routes=API_V1_ROUTES)],
    exception_handlers=json_error_handlers(
        lambda request: (
            f"No API route {request.url.path}: the API is under {API_PREFIX}/{API_VERSION}/."
        )
    ),
)

# ---------------------------------------------------------------- login and logout

# The cookie holds a session's random token and nothing else (engine/services/accounts.py).
SESSION_COOKIE = "seedlab_session"
# The login form's fields (dashboard/auth.py's form).
LOGIN_FIELDS = ("seedlab_user", "seedlab_password")
# A login form is a user name and a password; anything much bigger is not one.
_MAX_LOGIN_BODY = 4096


def _same_origin(request: Request, settings: Settings) -> bool:
    """A browser names the page that sent a form (Origin): refuse another site's form, which
    could log a visitor in as someone else. No Origin (curl, a script): nothing to compare.
    Behind a trusted proxy the public host may come as X-Forwarded-Host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    hosts = {request.headers.get("host", "")}
    peer = request.client.host if request.client else ""
    if is_trusted(peer, proxy_networks(settings.trusted_proxies)):
        hosts.add(request.headers.get("x-forwarded-host", "").split(",")[0].strip())
    return urlsplit(origin).netloc in hosts - {""}


def _back_to_page(**query: str) -> RedirectResponse:
    # 303: the browser follows with a GET of the page, so a reload does not post the form again.
    return RedirectResponse("/" + (f"?{urlencode(query)}" if query else ""), status_code=303)


async def login(request: Request) -> Response:
    """POST /auth/login (a form: LOGIN_FIELDS): the session cookie and back to the pages, or back
    to the login form with ?login=wrong (the one answer for a wrong password, an unknown user
    and a waiting user) or ?login=wait&minutes=N (this address tried too often)."""
    settings = Settings.from_env()
    if not _same_origin(request, settings):
        return JSONResponse({"error": "A login form from another site is refused."}, 403)
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY:
        return JSONResponse({"error": "A login form is a user name and a password."}, 413)
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    name = (form.get(LOGIN_FIELDS[0]) or [""])[0]
    password = (form.get(LOGIN_FIELDS[1]) or [""])[0]
    address = client_address(request, settings)
    db = get_db(settings)
    try:
        # argon2 takes ~0.3 s: in the thread pool, not on the event loop the pages share.
        actor = await run_in_threadpool(accounts.authenticate, db, name, password, address=address)
    except accounts.AddressWaits as exc:
        return _back_to_page(login="wait", minutes=str(exc.minutes))
    except accounts.LoginError:
        return _back_to_page(login="wrong")
    session = await run_in_threadpool(accounts.start_session, db, actor, address)
    response = _back_to_page()
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(accounts.session_lifetime().total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=served_over_https(request, settings),
    )
    return response


async def logout(request: Request) -> Response:
    """POST /auth/logout: the cookie's session ends on the server at once, and the cookie goes."""
    settings = Settings.from_env()
    if not _same_origin(request, settings):
        return JSONResponse({"error": "A logout form from another site is refused."}, 403)
    db = get_db(settings)
    await run_in_threadpool(accounts.end_session, db, request.cookies.get(SESSION_COOKIE))
    response = _back_to_page()
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


ROUTES: list[BaseRoute] = [
    Mount(API_PREFIX, app=api),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]


@asynccontextmanager
async def lifespan(_: st.App) -> AsyncIterator[None]:
    """At server start: the pages' modules imported in the background (dashboard/warm.py), so
    the first visitor of a page does not wait for them."""
    from dashboard import warm

    warm.start()
    yield


# `streamlit run` finds this by its name and class (a module-level `app = st.App(...)`).
app = st.App(
    PAGES,
    routes=ROUTES,
    lifespan=lifespan,
    # Pages with curves load the charting code while their script runs (dashboard/preload.py).
    middleware=[Middleware(PreloadCharts)],
)
