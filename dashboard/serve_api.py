"""Served models over HTTP (dashboard/web.py mounts ROUTES under /api/v1; `seedlab models serve`
runs them alone with `standalone_app`). JSON in and out; an error is one sentence in
{"error": ...}. The checks and the predictions are engine/services/serving.py's.

    POST /api/v1/models/{name}/predict   Authorization: Bearer <model token>
         {"rows": [{column: value, ...}, ...]}   a table model
         {"texts": ["...", ...]}                 a text model
         {"images": ["<base64 PNG/JPEG>", ...]}  an image model
      -> {"model", "version", "predictions": [...], "probabilities": [{label: p}, ...]
          (classification only), "latency_ms"}
    GET  /api/v1/models/{name}           the same token -> what the model takes and gives

401 a missing or wrong token (a user's API token is not a model token), 404 a name not served
or with nothing in production, 413 too many items or too big a body, 422 a bad input (naming
the column or the image), 429 over the rate limit (with Retry-After). The log entry of a request
is written after its answer is sent (a background task), so the caller does not wait for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from dashboard.forwarded import client_address
from dashboard.json_errors import json_error_handlers
from db.session import get_db
from engine.core.settings import Settings
from engine.services import serving
from engine.services.serving import ModelServer, ServeError

log = logging.getLogger("seedlab.serve")

_server: ModelServer | None = None
_server_lock = threading.Lock()


def model_server() -> ModelServer:
    """This process's ModelServer (its predictor cache and rate limiter), made at first use."""
    global _server
    with _server_lock:
        if _server is None:
            settings = Settings.from_env()
            _server = ModelServer(settings, get_db(settings))
        return _server


def use_server(server: ModelServer) -> None:
    """Answer with `server` (the standalone server's, limited to the names it serves)."""
    global _server
    with _server_lock:
        _server = server


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _client(request: Request) -> str:
    # The caller's address, past the trusted reverse proxies (SEEDLAB_TRUSTED_PROXIES).
    return client_address(request, model_server().settings)


def _error(exc: ServeError, background: BackgroundTask | None = None) -> JSONResponse:
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="seedlab-model"'
    return JSONResponse(
        {"error": str(exc)}, status_code=exc.status, headers=headers, background=background
    )


async def _body(request: Request) -> Any:  # noqa: ANN401 - parsed JSON
    """The request's JSON; ServeError 413 past MAX_BODY_BYTES, 422 when it is not JSON."""
    cap = serving.MAX_BODY_BYTES
    declared = request.headers.get("content-length")
    too_big = ServeError(
        f"The request is larger than {cap // (1024 * 1024)} MiB; send fewer items at a time.", 413
    )
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_big
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise ServeError(
            'The body is not JSON: send e.g. {"rows": [{"column": 1.5}]} with '
            "Content-Type: application/json.",
            422,
        ) from None


async def predict(request: Request) -> JSONResponse:
    started = time.perf_counter()
    name = request.path_params["name"]
    server = model_server()
    client = _client(request)
    payload: Any = None
    try:
        target = await run_in_threadpool(server.authorize, name, _token(request))
        try:
            payload = await _body(request)
        except ServeError as exc:
            exc.version = target.version
            raise
        answer = await run_in_threadpool(server.answer, target, payload)
    except ServeError as exc:
        task = None
        if exc.served:
            items = serving.count_items(payload)
            latency = serving.elapsed_ms(started)
            task = BackgroundTask(
                server.log, name, exc.version, exc.status, started, items, client, exc,
                latency_ms=latency,
            )  # fmt: skip
        return _error(exc, task)
    answer["latency_ms"] = latency = serving.elapsed_ms(started)
    items = serving.count_items(payload)
    task = BackgroundTask(
        server.log, name, target.version, 200, started, items, client, latency_ms=latency
    )
    return JSONResponse(answer, background=task)


async def describe(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    try:
        return JSONResponse(await run_in_threadpool(model_server().describe, name, _token(request)))
    except ServeError as exc:
        return _error(exc)


# Under /api/v1. `{name:path}`: a registered name may hold a slash (send it as %2F or plain).
ROUTES: list[BaseRoute] = [
    Route("/models/{name:path}/predict", predict, methods=["POST"]),
    Route("/models/{name:path}", describe, methods=["GET"]),
]


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def standalone_app(server: ModelServer) -> Starlette:
    """The model routes alone, at the same paths as in the dashboard (`seedlab models serve`)."""
    use_server(server)
    return Starlette(
        routes=[Mount("/api/v1", routes=[Route("/health", _health), *ROUTES])],
        exception_handlers=json_error_handlers(
            lambda request: (
                f"No route {request.url.path}: a served model answers at "
                f"{serving.API_PATH}/NAME/predict."
            )
        ),
    )
