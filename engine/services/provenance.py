"""Recording what a run ran (engine/core/provenance.py collects it): the file in the run's
folder and its artifact row. The runner calls it for built-in runs, the SDK drain with what an
SDK process sent in its "init" line."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db.writes import artifacts as artifact_writes
from engine.core.atomic import write_json_atomic
from engine.core.provenance import collect
from engine.core.run_files import code_path
from engine.core.settings import Settings

log = logging.getLogger("seedlab.provenance")


def record_code(settings: Settings, db: Engine, run_id: int, info: dict[str, Any]) -> None:
    """Write `info` as the run's code.json and register it (kind "code")."""
    path = code_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, info)
    data = path.read_bytes()
    artifact_writes.add_artifact(
        db,
        run_id,
        kind="code",
        path=path.name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def json_safe(info: Any) -> dict[str, Any]:  # noqa: ANN401 - whatever a client sent
    """What an SDK sent, kept only if it is a JSON object (a drain must not fail on it)."""
    if not isinstance(info, dict):
        return {}
    try:
        return json.loads(json.dumps(info, default=str))
    except (TypeError, ValueError):
        return {}


def record_what_ran(
    settings: Settings,
    db: Engine,
    run_id: int,
    device: str | None,
    folder: str | Path,
    argv: list[str] | None = None,
) -> None:
    """Collect what runs now in this process (the code in `folder`, this Python and its
    packages, `argv` or this command line, host, device) and record it; never raises: a record
    of what ran must not stop it running."""
    try:
        record_code(settings, db, run_id, collect(device, folder=folder, argv=argv))
    except Exception:  # noqa: BLE001
        log.warning("could not record what run %s ran", run_id, exc_info=True)
