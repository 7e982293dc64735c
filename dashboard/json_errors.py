"""Starlette's errors as one JSON sentence, for the routes under /api (dashboard/web.py) and a
standalone served-model server (dashboard/serve_api.py), rather than Starlette's plain text."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


def json_error_handlers(not_found: Callable[[Request], str]) -> dict:
    """Starlette `exception_handlers`: an unknown path gets `not_found(request)` (which says
    where the routes are), a wrong method its own sentence, a failure inside a route one
    sentence (Starlette logs the traceback after this answer is sent)."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = (
            not_found(request)
            if exc.status_code == 404
            else f"{exc.detail}: {request.method} {request.url.path}."
        )
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": "The server failed on this request: its log says why."}, status_code=500
        )

    return {HTTPException: http_error, Exception: server_error}
