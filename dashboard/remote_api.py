"""The SDK's HTTP API under /api/v1 (dashboard/web.py mounts ROUTES): a run's spool lines sent
from another machine (SEEDLAB_URL + SEEDLAB_TOKEN; the client is seedlab/_remote.py).

    GET  /api/v1/me                        who the token acts as: {"name", "role"}
    POST /api/v1/runs                      {"key", "init": <init line>} -> 201 {"id", "received"}
    POST /api/v1/runs/{id}/lines           {"start", "lines": [...]} -> {"received", "stop"}
    PUT  /api/v1/runs/{id}/artifacts/{name}  the file's bytes -> {"name", "bytes"}
    GET  /api/v1/runs/{id}/stop            {"stop", "status"}

Every route needs `Authorization: Bearer <token>` (a user's API token: `seedlab users token
NAME` or the API tokens page), even while the pages need no login (localhost): any page in the
browser can send a request to localhost, so a write without a token would be anyone's. The
token acts with its user's role, the checks are the services' own (engine/services/
remote_runs.py): 401 without a valid token, 403 for a role or run the user may not log to.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from db.session import get_db
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import api_tokens, remote_runs
from engine.services.permissions import Actor, PermissionDenied

log = logging.getLogger("seedlab.api")

MAX_JSON_BYTES = 64 * 1024 * 1024  # one batch of lines; the SDK sends far less at a time

_STATUS: list[tuple[type[Exception], int]] = [
    (PermissionDenied, 403),
    (remote_runs.NoSuchRun, 404),
    (remote_runs.NotRemote, 409),
    (remote_runs.StreamGap, 409),
    (remote_runs.BadRequest, 400),
    (SeedlabError, 400),
]


class _Unauthorized(Exception):
    pass


def _error(message: str, status: int, **extra: Any) -> JSONResponse:  # noqa: ANN401
    headers = {"WWW-Authenticate": 'Bearer realm="seedlab"'} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _context() -> tuple[Settings, Engine]:
    settings = Settings.from_env()
    return settings, get_db(settings)


def _actor(request: Request, db: Engine) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _Unauthorized(
            "This API needs a token: send `Authorization: Bearer <token>` (for the SDK, set "
            "SEEDLAB_TOKEN). Make one with `seedlab users token NAME` or on the dashboard's "
            "API tokens page."
        )
    actor = api_tokens.token_actor(db, token.strip())
    if actor is None:
        raise _Unauthorized(
            "This token is not valid: it was revoked, its user removed, or it was mistyped. "
            "Make a new one with `seedlab users token NAME`."
        )
    return actor


def _attempt(work: Callable[[], Any]) -> tuple[Any, JSONResponse | None]:  # noqa: ANN401
    """Run `work` (sync: call this in the thread pool); our refusals become a JSON answer with
    their status, anything else propagates (a 500, logged)."""
    try:
        return work(), None
    except _Unauthorized as exc:
        return None, _error(str(exc), 401)
    except Exception as exc:
        for kind, code in _STATUS:
            if isinstance(exc, kind):
                extra = {"received": exc.received} if isinstance(exc, remote_runs.StreamGap) else {}
                return None, _error(str(exc), code, **extra)
        raise


async def _answer(work: Callable[[], Any], status: int = 200) -> JSONResponse:  # noqa: ANN401
    value, refused = await run_in_threadpool(_attempt, work)
    return refused or JSONResponse(value, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_JSON_BYTES:
        raise remote_runs.BadRequest(
            f"The request is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB: send fewer lines "
            "at a time."
        )
    try:
        body = await request.json()
    except ValueError:
        raise remote_runs.BadRequest("The request's body is not JSON.") from None
    if not isinstance(body, dict):
        raise remote_runs.BadRequest("The request's body must be a JSON object.")
    return body


async def me(request: Request) -> JSONResponse:
    def work() -> dict[str, Any]:
        _, db = _context()
        actor = _actor(request, db)
        return {"name": actor.name, "role": actor.role}

    return await _answer(work)


async def create_run(request: Request) -> JSONResponse:
    try:
        body = await _json_body(request)
    except remote_runs.BadRequest as exc:
        return _error(str(exc), 400)

    def work() -> dict[str, Any]:
        settings, db = _context()
        actor = _actor(request, db)
        run_id, received = remote_runs.create_run(
            settings, db, actor, body.get("key"), body.get("init")
        )
        return {"id": run_id, "received": received}

    return await _answer(work, 201)


async def append_lines(request: Request) -> JSONResponse:
    run_id = request.path_params["run_id"]
    try:
        body = await _json_body(request)
    except remote_runs.BadRequest as exc:
        return _error(str(exc), 400)

    def work() -> dict[str, Any]:
        settings, db = _context()
        actor = _actor(request, db)
        received, stop = remote_runs.append_lines(
            settings, db, actor, run_id, body.get("start"), body.get("lines")
        )
        return {"received": received, "stop": stop}

    return await _answer(work)


async def upload_artifact(request: Request) -> JSONResponse:
    """The body is the file. Checked before a byte is read; written beside its place and moved
    in whole, so the run never shows half a file."""
    run_id, name = request.path_params["run_id"], request.path_params["name"]

    def target() -> Path:
        settings, db = _context()
        return remote_runs.artifact_target(settings, db, _actor(request, db), run_id, name)

    cap_mb = Settings.from_env().max_artifact_mb
    too_big = _error(
        f"The file is larger than {cap_mb} MB, the most one artifact may be "
        "(SEEDLAB_MAX_ARTIFACT_MB on the server): save a smaller file or raise the limit.",
        413,
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap_mb * 1024 * 1024:
        return await _after_draining(request.stream(), too_big)
    path, refused = await run_in_threadpool(_attempt, target)
    if refused is not None:
        return refused
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    size = 0
    try:
        with partial.open("wb") as fh:
            chunks = request.stream()
            async for chunk in chunks:
                size += len(chunk)
                if size > cap_mb * 1024 * 1024:  # a body longer than it said, or no length
                    return await _after_draining(chunks, too_big)
                await run_in_threadpool(fh.write, chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return JSONResponse({"name": name, "bytes": size})


# How much of a refused upload is read (and dropped) so that its client gets the answer.
DRAIN_BYTES = 64 * 1024 * 1024


async def _after_draining(chunks: AsyncIterator[bytes], answer: JSONResponse) -> JSONResponse:
    """`answer`, once the rest of the request body is read and dropped (up to DRAIN_BYTES): a
    client that is still sending when the server answers and closes gets a broken pipe (urllib,
    the SDK) instead of the sentence that says what to do."""
    drained = 0
    async for chunk in chunks:
        drained += len(chunk)
        if drained > DRAIN_BYTES:
            break
    return answer


async def stop_flag(request: Request) -> JSONResponse:
    run_id = request.path_params["run_id"]

    def work() -> dict[str, Any]:
        _, db = _context()
        return remote_runs.stop_state(db, _actor(request, db), run_id)

    return await _answer(work)


ROUTES: list[BaseRoute] = [
    Route("/me", me, methods=["GET"]),
    Route("/runs", create_run, methods=["POST"]),
    Route("/runs/{run_id:int}/lines", append_lines, methods=["POST"]),
    Route("/runs/{run_id:int}/artifacts/{name:path}", upload_artifact, methods=["PUT"]),
    Route("/runs/{run_id:int}/stop", stop_flag, methods=["GET"]),
]
