"""Writing SDK spool lines into a run: the one implementation, used by the spool drain
(engine/execution/sdk_drain.py, which reads a file; its docstring is the reference) and by the
HTTP API (engine/services/remote_runs.py), which gets the lines already parsed.

The rules: a metric step repeated keeps the
last value; a line without a step, and every summary value, take the key's next step; values
that are not numbers are left out, NaN is a gap; an artifact line records a file already under
<run dir>/artifacts/ (kind "sdk"); every batch beats the run's heartbeat and reads its cancel
flag; `finish` sets the final status (first writer wins) and puts a traceback into the log.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db.models import FINISHED_STATUSES
from db.writes import artifacts as artifact_writes
from db.writes import runs as run_writes
from engine.core.run_files import append_log_line
from engine.core.settings import Settings
from engine.services.alerts import notify_run_ended

ARTIFACT_KIND = "sdk"  # as engine/execution/sdk_drain.py records them
ARTIFACTS = "artifacts"


def _number(value: Any) -> float | None:  # noqa: ANN401 - whatever JSON held
    if isinstance(value, bool | int | float):
        try:
            return float(value)
        except OverflowError:  # an int past a float's range
            return None
    return None


@dataclass
class Written:
    """What one batch did: whether a cancel is requested, the finish it applied (if any)."""

    cancel: bool
    points: int
    init: dict[str, Any] | None = None  # the batch's first `init` line
    finish_status: str | None = None
    error: str | None = None
    artifacts: list[str] = field(default_factory=list)


def next_steps(summary: dict[str, dict[str, float]]) -> dict[str, int]:
    """The next step of each key from a run's summaries (RunRecord.summary)."""
    return {key: int(entry["step"]) + 1 for key, entry in summary.items()}


def write_lines(
    settings: Settings,
    db: Engine,
    run_id: int,
    lines: Iterable[Any],
    next_step: dict[str, int],
    *,
    apply_finish: bool = True,
    log_traceback: bool = True,
) -> Written:
    """Write parsed spool lines (dicts) into run `run_id`; `next_step` (key -> its next step)
    is updated in place. `apply_finish=False` reports a `finish` line without ending the run
    (a supervisor that settles the status itself); `log_traceback=False` keeps its traceback
    out of the log (one the script printed there already)."""

    def step_for(key: str, step: Any) -> int:  # noqa: ANN401 - JSON
        chosen = (
            step if isinstance(step, int) and not isinstance(step, bool) else next_step.get(key, 0)
        )
        if chosen + 1 > next_step.get(key, 0):
            next_step[key] = chosen + 1
        return chosen

    now = time.time()
    points: list[tuple[str, int, float, float]] = []
    artifacts: list[str] = []
    finish: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    for line in lines:
        if not isinstance(line, dict):
            continue
        kind = line.get("type")
        if kind in ("metrics", "summary") and isinstance(line.get("values"), dict):
            wall = line.get("time") if kind == "metrics" else None
            wall = float(wall) if isinstance(wall, int | float) else now
            step = line.get("step") if kind == "metrics" else None
            for key, raw in line["values"].items():
                value = _number(raw)
                if value is not None:
                    points.append((str(key)[:250], step_for(str(key)[:250], step), value, wall))
        elif kind == "artifact" and isinstance(line.get("name"), str):
            artifacts.append(line["name"])
        elif kind == "finish" and finish is None:
            finish = line
        elif kind == "init" and init is None:
            init = line
        # heartbeat and unknown types: a sign of life, nothing to store
    written = Written(
        cancel=run_writes.record_progress(db, run_id, points), points=len(points), init=init
    )
    for name in artifacts:
        if _record_artifact(settings, db, run_id, name):
            written.artifacts.append(name)
    if finish is not None:
        written.finish_status, written.error = _finish(
            settings, db, run_id, finish, apply=apply_finish, log_traceback=log_traceback
        )
    return written


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _record_artifact(settings: Settings, db: Engine, run_id: int, name: str) -> bool:
    """Record the file `name` under the run's artifacts/ (a logged folder: each of its files)."""
    run_dir = settings.run_dir(run_id).resolve()
    folder = run_dir / ARTIFACTS
    path = (folder / name).resolve()
    # The name comes from the client: stay inside the run's artifacts folder.
    inside = bool(name) and path.is_relative_to(folder)
    files = [path] if inside and path.is_file() else []
    if inside and path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        append_log_line(
            settings, run_id, f"seedlab: artifact {name!r} was announced but never arrived."
        )
        return False
    for file in files:
        artifact_writes.add_artifact(
            db,
            run_id,
            kind=ARTIFACT_KIND,
            path=str(file.relative_to(run_dir)),
            size_bytes=file.stat().st_size,
            sha256=_sha256(file),
        )
    return True


def _finish(
    settings: Settings,
    db: Engine,
    run_id: int,
    line: dict[str, Any],
    *,
    apply: bool,
    log_traceback: bool,
) -> tuple[str, str | None]:
    status = line.get("status")
    if status not in FINISHED_STATUSES:
        status = "failed"
    error = str(line["error"]) if line.get("error") else None
    if status == "failed" and not error:
        error = "The script reported a failure without a message."
    if line.get("traceback") and log_traceback:
        append_log_line(settings, run_id, str(line["traceback"]))
    if apply and run_writes.finish_run(db, run_id, status, error):
        notify_run_ended(db, settings, run_id)  # never raises: an alert never fails a run
    return status, error
