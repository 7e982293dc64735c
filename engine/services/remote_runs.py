"""Runs that the SDK logs over the HTTP API (SEEDLAB_URL + SEEDLAB_TOKEN): what the /api/v1
routes (dashboard/remote_api.py) call, with the token's user as the actor.

The SDK sends the same spool lines it writes on disk (SDK-PROTOCOL: init, metrics, summary,
artifact, heartbeat, finish), numbered from 0 (the init line) in the order written. The server
keeps how many it applied (remote_streams), so a batch sent again, after an answer lost to a
restart, is not applied twice: lines below that count are skipped, and a batch that starts
past it is refused with the count, from which the SDK resends. Creating is idempotent the same
way: the SDK's key for the run names one run however often it is sent.

Permissions are the pages': logging needs the launch right (a viewer's token is refused), and
a member logs only to their own runs; reading the stop flag needs to see the run.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from db import datasets as dataset_store
from db import projects as project_store
from db import remote_streams as stream_store
from db import runs as run_store
from db.models import DEFAULT_PROJECT_ID
from db.writes import remote_streams as stream_writes
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import audit, projects, provenance, sdk_lines
from engine.services.permissions import Actor, Permission, PermissionDenied, check

MAX_LINES_PER_BATCH = 50_000
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class NoSuchRun(SeedlabError):
    """The run does not exist (404)."""


class NotRemote(SeedlabError):
    """The run exists but was not created through the API: it takes no lines (409)."""


class BadRequest(SeedlabError):
    """The request's body is not what the API takes (400)."""


class StreamGap(SeedlabError):
    """A batch starts past the lines applied so far: resend from `received` (409)."""

    def __init__(self, run_id: int, received: int, start: int) -> None:
        super().__init__(
            f"Run {run_id} has {received} lines applied; this batch starts at line {start}. "
            f"Send again from line {received}."
        )
        self.received = received


# ---------------------------------------------------------------- create


def create_run(
    settings: Settings, db: Engine, actor: Actor, client_key: str, init: dict[str, Any]
) -> tuple[int, int]:
    """The run for the SDK's `init` line: (run id, lines applied). The same `client_key` again
    answers the run it made the first time."""
    check(actor, Permission.LAUNCH)
    if not isinstance(client_key, str) or not _KEY.match(client_key):
        raise BadRequest("`key` must be 8-64 letters, digits, '-' or '_' (the SDK makes one).")
    if not isinstance(init, dict) or init.get("type") != "init":
        raise BadRequest('`init` must be the spool\'s first line, {"type": "init", ...}.')
    existing = stream_store.by_key(db, client_key)
    if existing is not None:
        _check_owner(db, actor, existing.run_id)
        return existing.run_id, existing.lines_applied
    config = init.get("config") or {}
    if not isinstance(config, dict):
        raise BadRequest("`config` must be a JSON object of the run's parameters.")
    project_id = _project(db, actor, init.get("project"))
    dataset_id = _dataset(db, init.get("dataset"))
    name = str(init.get("name") or "").strip()[:200] or "sdk run"
    try:
        run_id = stream_writes.create_remote_run(
            db,
            client_key=client_key,
            name=name,
            config=config,
            owner=actor.name,
            project_id=project_id,
            dataset_id=dataset_id,
        )
    except IntegrityError:  # the same key at the same moment: the other request made it
        existing = stream_store.by_key(db, client_key)
        if existing is None:
            raise
        return existing.run_id, existing.lines_applied
    (settings.run_dir(run_id) / sdk_lines.ARTIFACTS).mkdir(parents=True, exist_ok=True)
    if isinstance(init.get("code"), dict):  # what ran, as the SDK saw it
        provenance.record_code(settings, db, run_id, provenance.json_safe(init["code"]))
    audit.record(db, actor, "launch", f"run {run_id}", "SDK, over the API")
    return run_id, 1


def _project(db: Engine, actor: Actor, name: Any) -> int:  # noqa: ANN401 - JSON
    if not name:
        return DEFAULT_PROJECT_ID
    name = str(name).strip()
    found = project_store.get_project_by_name(db, name)
    if found is not None:
        return found.id
    try:
        return projects.create_project(db, actor, name)
    except SeedlabError:
        # Another run created it a moment ago (a name taken); anything else is the real refusal.
        again = project_store.get_project_by_name(db, name)
        if again is None:
            raise
        return again.id


def _dataset(db: Engine, name: Any) -> int | None:  # noqa: ANN401 - JSON
    if not name:
        return None
    found = dataset_store.get_dataset_by_name(db, str(name))
    if found is None:  # as the local drain answers (engine/execution/sdk_drain.py)
        raise BadRequest(
            f"No dataset named {name!r} in Seedlab. Upload it first "
            f"(seedlab datasets upload FILE --name {name}), or leave dataset= out."
        )
    return found.id


# ---------------------------------------------------------------- lines


def _check_owner(db: Engine, actor: Actor, run_id: int) -> None:
    """Logging to a run: the launch right, and (for a member) the run is theirs."""
    check(actor, Permission.LAUNCH)
    run = run_store.get_run(db, run_id)
    if run is None:
        raise NoSuchRun(f"No run {run_id}.")
    if actor.role != "admin" and run.owner != actor.name:
        raise PermissionDenied(
            f"Run {run_id} belongs to {run.owner or 'nobody'}; a {actor.role} can log only to "
            "their own runs. Use its owner's token."
        )


def append_lines(
    settings: Settings, db: Engine, actor: Actor, run_id: int, start: int, lines: list[Any]
) -> tuple[int, bool]:
    """Apply `lines` (line numbers start, start+1, ...) to the run, skipping those applied
    before. (lines applied now, whether a cancel was requested)."""
    _check_owner(db, actor, run_id)
    if not isinstance(start, int) or start < 1:
        raise BadRequest("`start` must be the number of the batch's first line (1 or more).")
    if not isinstance(lines, list) or len(lines) > MAX_LINES_PER_BATCH:
        raise BadRequest(f"`lines` must be a list of at most {MAX_LINES_PER_BATCH} spool lines.")
    # One batch of a run at a time: a batch sent again (its answer late) while the first is
    # still being written must see the first one's count, not apply the same lines beside it.
    with _run_lock(run_id):
        stream = stream_store.by_run(db, run_id)
        if stream is None:
            raise NotRemote(
                f"Run {run_id} was not created through the API, so it takes no logged lines."
            )
        if start > stream.lines_applied:
            raise StreamGap(run_id, stream.lines_applied, start)
        fresh = lines[stream.lines_applied - start :]
        stop = apply_lines(settings, db, run_id, fresh)
        # Counted after they are written: a server killed in between applies them again at the
        # resend (points with a step overwrite themselves), rather than losing them.
        received = start + len(lines)
        stream_writes.advance(db, run_id, received)
    return max(received, stream.lines_applied), stop


_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _run_lock(run_id: int) -> threading.Lock:
    """This process's lock for one run (the API is served by one process: `seedlab up`)."""
    with _locks_guard:
        return _locks.setdefault(run_id, threading.Lock())


def apply_lines(settings: Settings, db: Engine, run_id: int, lines: list[Any]) -> bool:
    """Write spool lines into the run (engine/services/sdk_lines.py: the drain's rules, with
    the next step of each key read from the run's summaries, as a request keeps no state).
    Returns whether a cancel was requested."""
    run = run_store.get_run(db, run_id)
    if run is None:
        raise NoSuchRun(f"No run {run_id}.")
    return sdk_lines.write_lines(
        settings, db, run_id, lines, sdk_lines.next_steps(run.summary)
    ).cancel


# ---------------------------------------------------------------- artifacts, stop flag


def artifact_path(settings: Settings, run_id: int, name: str) -> Path:
    """Where an uploaded artifact named `name` goes: <run dir>/artifacts/<name>. A name is a
    file name, or a relative path of them for a file of a logged folder ("plots/loss.png"):
    no '..', nothing hidden, no absolute path."""
    parts = name.split("/") if isinstance(name, str) else []
    if (
        not parts
        or len(name) > 500
        or "\\" in name
        or "\x00" in name
        or any(not part or part.startswith(".") for part in parts)
    ):
        raise BadRequest(
            f"Artifact name {name!r} is not a file name: use the file's own name, or "
            "folder/name for a file of a folder (no '..', not starting with '.')."
        )
    return settings.run_dir(run_id) / sdk_lines.ARTIFACTS / Path(*parts)


def artifact_target(settings: Settings, db: Engine, actor: Actor, run_id: int, name: str) -> Path:
    """Check that `actor` may upload to this API run and return where the file goes (its
    folder made); the caller writes it there, then sends the artifact line."""
    _check_owner(db, actor, run_id)
    if stream_store.by_run(db, run_id) is None:
        raise NotRemote(f"Run {run_id} was not created through the API; it takes no uploads.")
    path = artifact_path(settings, run_id, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise BadRequest(f"Artifact {name!r} is a folder on the server; upload its files.")
    return path


def stop_state(db: Engine, actor: Actor, run_id: int) -> dict[str, Any]:
    """{"stop": whether the SDK should stop, "status": the run's status}."""
    check(actor, Permission.BROWSE)
    run = run_store.get_run(db, run_id)
    if run is None:
        raise NoSuchRun(f"No run {run_id}.")
    return {"stop": bool(run.cancel_requested), "status": run.status}
