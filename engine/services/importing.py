"""Moving in: a team's history from MLflow or TensorBoard, copied into Seedlab runs.

Each source run becomes a finished Seedlab run of source "sdk" without a dataset, as if the
team's script had logged it through the SDK: its parameters are the config, its tags Seedlab
tags (and the notes), its full metric histories the run's points, and where it came from is
kept in its Code record (engine/core/provenance.py). Every imported run carries a tag naming
its source run (`mlflow:<run id>`, `tensorboard:<hash of the folder>`), so importing again
skips what is already here.

MLflow is read straight from its tracking database with SQLAlchemy, through the tables its
documented schema has had since MLflow 1.x (experiments, runs, params, tags, metrics): the full
`mlflow` package (the only one with the SQL store; `mlflow-skinny` has none) installs Flask,
Alembic migrations, Graphene, Docker and more, too much for a one-off copy. TensorBoard event
files are read record by record with tensorboardX's protobuf messages (already installed);
TensorBoard itself is not needed.

Repeated steps follow the SDK's rule (the SDK drain's, issue 19): the last value logged at a
step wins. One exception keeps whole histories: a key whose points all share one step (what
`mlflow.log_metric` without `step=` writes: step 0 every time) is numbered 0, 1, 2… in the order
logged, as the SDK numbers a `run.log` without a step.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from db.imports import runs_tagged
from db.models import DEFAULT_PROJECT_ID
from db.projects import get_project_by_name
from db.writes import imports as import_writes
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import audit
from engine.services.permissions import Actor, Permission, check
from engine.services.projects import create_project
from engine.services.provenance import record_code

# (step, value, wall time in seconds), in the order the source logged them.
Series = list[tuple[int, float, float]]

MLFLOW_STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "cancelled"}
STILL_RUNNING = (
    "It was still running in {tracker} when it was imported; its history stops at the import."
)


@dataclass
class SourceRun:
    """One run of another tracker, read and not yet written."""

    mark: str  # the tag that says where it came from (and that it is already here)
    name: str
    group: str  # MLflow experiment / TensorBoard log folder: the default project name
    config: dict[str, Any]
    metrics: dict[str, Series]
    start: float
    end: float | None
    status: str = "completed"
    error: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    code: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportResult:
    imported: list[tuple[int, str]] = field(default_factory=list)  # (Seedlab id, name)
    skipped: int = 0  # already imported before
    points: int = 0
    overwritten: int = 0  # values logged again at a step, the last one kept
    renumbered: int = 0  # keys logged at one step only, numbered 0, 1, 2…
    projects: list[str] = field(default_factory=list)


def apply_step_rule(series: Series) -> tuple[Series, int, bool]:
    """`series` as stored: (points by step, values overwritten, whether renumbered)."""
    if len(series) > 1 and len({step for step, _v, _t in series}) == 1:
        return [(i, v, t) for i, (_s, v, t) in enumerate(series)], 0, True
    last: dict[int, tuple[int, float, float]] = {}
    for point in series:
        last[point[0]] = point
    return sorted(last.values()), len(series) - len(last), False


def parse_param(value: str) -> Any:  # noqa: ANN401 - a number, a bool or the text itself
    """A parameter as its value: MLflow and TensorBoard keep them as text ("0.001", "True")."""
    for kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    return {"True": True, "False": False, "true": True, "false": False}.get(value, value)


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- MLflow


def _mlflow_engine(tracking_uri: str) -> Engine:
    try:
        url = make_url(tracking_uri)
    except ArgumentError:
        url = None
    if url is None or url.drivername.split("+")[0] not in (
        "sqlite",
        "postgresql",
        "mysql",
        "mssql",
    ):
        raise SeedlabError(
            f"{tracking_uri!r} is not an MLflow tracking database. Give the database MLflow "
            "writes to, e.g. --tracking-uri sqlite:///mlflow.db (a folder of mlruns/ files or "
            "an http:// server cannot be read directly: point at its backend store)."
        )
    if url.drivername.startswith("sqlite") and url.database:
        if not Path(url.database).is_file():
            raise SeedlabError(f"No MLflow database at {url.database}: check the path.")
    return create_engine(url)


def _safe_uri(tracking_uri: str) -> str:
    """The tracking URI without its password, for the runs' records."""
    return make_url(tracking_uri).render_as_string(hide_password=True)


def read_mlflow(tracking_uri: str, experiment: str | None = None) -> Iterator[SourceRun]:
    """Every active run of the MLflow database (of one experiment by name), in start order."""
    engine = _mlflow_engine(tracking_uri)
    try:
        tables = set(inspect(engine).get_table_names())
        missing = {"experiments", "runs", "metrics", "params", "tags"} - tables
        if missing:
            raise SeedlabError(
                f"{_safe_uri(tracking_uri)} is not an MLflow tracking database: it has no "
                f"{', '.join(sorted(missing))} table. Check --tracking-uri."
            )
        with engine.connect() as conn:
            experiments = {
                row.experiment_id: row.name
                for row in conn.execute(
                    text(
                        "SELECT experiment_id, name FROM experiments "
                        "WHERE lifecycle_stage = 'active'"
                    )
                )
            }
            if experiment is not None:
                experiments = {k: v for k, v in experiments.items() if v == experiment}
                if not experiments:
                    raise SeedlabError(
                        f"No experiment named {experiment!r} in {_safe_uri(tracking_uri)}. "
                        "Leave out --experiment to import them all."
                    )
            runs = conn.execute(
                text(
                    "SELECT run_uuid, name, status, start_time, end_time, experiment_id, "
                    "artifact_uri FROM runs WHERE lifecycle_stage = 'active' "
                    "ORDER BY start_time, run_uuid"
                )
            ).all()
            for run in runs:
                if run.experiment_id not in experiments:
                    continue
                yield _mlflow_run(conn, run, experiments[run.experiment_id], tracking_uri)
    except SQLAlchemyError as exc:
        raise SeedlabError(
            f"Could not read the MLflow database {_safe_uri(tracking_uri)}: "
            f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"
        ) from exc
    finally:
        engine.dispose()


def _mlflow_run(conn: Any, run: Any, experiment: str, tracking_uri: str) -> SourceRun:  # noqa: ANN401
    uuid = run.run_uuid
    params = dict(
        conn.execute(text("SELECT key, value FROM params WHERE run_uuid = :r"), {"r": uuid}).all()
    )
    tags = dict(
        conn.execute(text("SELECT key, value FROM tags WHERE run_uuid = :r"), {"r": uuid}).all()
    )
    metrics: dict[str, Series] = {}
    # MLflow keeps every value with its timestamp (ms): that order is the order logged.
    rows = conn.execute(
        text(
            "SELECT key, step, value, timestamp, is_nan FROM metrics WHERE run_uuid = :r "
            "ORDER BY key, timestamp, step"
        ),
        {"r": uuid},
    )
    for key, step, value, stamp, is_nan in rows:
        number = float("nan") if is_nan or value is None else float(value)
        metrics.setdefault(key, []).append((int(step or 0), number, (stamp or 0) / 1000))
    start = (run.start_time or 0) / 1000
    status = MLFLOW_STATUS.get(run.status or "", "failed")
    user_tags = [
        f"{k}={v}" if v else k
        for k, v in sorted(tags.items())
        if not k.startswith("mlflow.") and len(k) < 90
    ]
    code: dict[str, Any] = {
        "imported_from": {
            "tracker": "mlflow",
            "tracking_uri": _safe_uri(tracking_uri),
            "experiment": experiment,
            "run_id": uuid,
            "artifact_uri": run.artifact_uri,
        },
        "git": {"commit": tags["mlflow.source.git.commit"]}
        if tags.get("mlflow.source.git.commit")
        else {},
        "command": [tags["mlflow.source.name"]] if tags.get("mlflow.source.name") else [],
        "tags": tags,
    }
    return SourceRun(
        mark=f"mlflow:{uuid}",
        name=run.name or tags.get("mlflow.runName") or uuid[:8],
        group=experiment,
        config={k: parse_param(v) for k, v in params.items()},
        metrics=metrics,
        start=start,
        end=(run.end_time / 1000) if run.end_time else None,
        status=status,
        error=None
        if status != "failed" or run.status == "FAILED"
        else STILL_RUNNING.format(tracker="MLflow"),
        tags=user_tags,
        notes=tags.get("mlflow.note.content", ""),
        code=code,
    )


# ---------------------------------------------------------------- TensorBoard

_DTYPES = {1: "<f4", 2: "<f8", 19: "<f2"}  # DT_FLOAT, DT_DOUBLE, DT_HALF


def _records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file (length, its CRC, data, its CRC); a cut last record, as
    a writer still running leaves, ends the file."""
    with path.open("rb") as fh:
        while True:
            header = fh.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = fh.read(length)
            if len(data) < length or len(fh.read(4)) < 4:
                return
            yield data


def _scalar(value: Any) -> float | None:  # noqa: ANN401 - a tensorboardX Summary.Value
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    plugin = value.metadata.plugin_data.plugin_name
    if plugin and plugin != "scalars":
        return None
    tensor = value.tensor
    for values in (tensor.float_val, tensor.double_val, tensor.half_val):
        if len(values) == 1:
            return float(values[0])
    dtype = _DTYPES.get(tensor.dtype)
    if dtype and tensor.tensor_content:
        import numpy as np

        array = np.frombuffer(tensor.tensor_content, dtype=dtype)
        return float(array[0]) if array.size == 1 else None
    return None


def read_tensorboard(logdir: str | Path) -> Iterator[SourceRun]:
    """One run per folder of `logdir` (itself included) that holds event files."""
    from tensorboardX.proto.event_pb2 import Event

    root = Path(logdir).expanduser().resolve()
    if not root.is_dir():
        raise SeedlabError(f"{logdir} is not a folder: give the log folder TensorBoard reads.")
    folders = sorted({p.parent for p in root.rglob("*tfevents*") if p.is_file()})
    if not folders:
        raise SeedlabError(
            f"No TensorBoard event files (events.out.tfevents.*) under {logdir}: check the path."
        )
    for folder in folders:
        metrics: dict[str, Series] = {}
        times: list[float] = []
        for path in sorted(p for p in folder.glob("*tfevents*") if p.is_file()):
            for record in _records(path):
                event = Event.FromString(record)
                times.append(event.wall_time)
                if event.WhichOneof("what") != "summary":
                    continue
                for value in event.summary.value:
                    number = _scalar(value)
                    if number is not None:
                        metrics.setdefault(value.tag, []).append(
                            (int(event.step), number, event.wall_time)
                        )
        relative = folder.relative_to(root).as_posix()
        name = root.name if relative == "." else relative
        yield SourceRun(
            mark="tensorboard:" + hashlib.sha256(str(folder).encode()).hexdigest()[:16],
            name=name[:200],
            group=root.name,
            config={},
            metrics=metrics,
            start=min(times) if times else folder.stat().st_mtime,
            end=max(times) if times else None,
            code={"imported_from": {"tracker": "tensorboard", "folder": str(folder)}},
        )


# ---------------------------------------------------------------- writing


def _project_id(db: Engine, actor: Actor, name: str | None, cache: dict[str, int]) -> int:
    name = (name or "").strip()[:200]  # projects.name holds 200 characters
    if not name:
        return DEFAULT_PROJECT_ID
    if name not in cache:
        project = get_project_by_name(db, name)
        # A new project is created, checked and audited as `seedlab projects create` would.
        cache[name] = project.id if project else create_project(db, actor, name)
    return cache[name]


def import_runs(
    settings: Settings,
    db: Engine,
    actor: Actor,
    source: Iterator[SourceRun],
    *,
    what: str,
    project: str | None = None,
) -> ImportResult:
    """Write the runs `source` yields (those not imported before) into Seedlab as `actor`.

    Each run goes to `project` (by name, created if missing) or, without one, to the project
    named after its MLflow experiment or log folder."""
    check(actor, Permission.LAUNCH)
    result = ImportResult()
    projects: dict[str, int] = {}
    for run in source:
        if runs_tagged(db, [run.mark]):
            result.skipped += 1
            continue
        points = []
        for key, series in run.metrics.items():
            kept, overwritten, renumbered = apply_step_rule(series)
            result.overwritten += overwritten
            result.renumbered += renumbered
            points += [(key[:250], step, value, wall) for step, value, wall in kept]
        group = project or run.group
        run_id = import_writes.insert_finished_run(
            db,
            name=run.name[:200],
            project_id=_project_id(db, actor, group, projects),
            config=json.loads(json.dumps(run.config, default=str)),
            status=run.status,
            created_at=_time(run.start),
            finished_at=_time(run.end) if run.end else None,
            points=points,
            tags=[*run.tags, run.mark],
            notes=run.notes,
            error=run.error,
            owner=actor.name,
        )
        record_code(settings, db, run_id, run.code)
        result.imported.append((run_id, run.name))
        result.points += len(points)
        if group and group not in result.projects:
            result.projects.append(group)
    if result.imported:
        audit.record(db, actor, "import", what, f"{len(result.imported)} runs")
    return result
