"""Plain, immutable records returned by the query functions (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    name: str
    kind: str
    task: str
    target: str
    schema: dict[str, Any]
    n_rows: int
    n_columns: int
    sha256: str
    path: str
    source_filename: str
    created_at: datetime
    owner: str | None = None  # the user who uploaded it; None: before auth or the demo set

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetVersionRecord:
    """One immutable version of a dataset: its base data plus a cumulative patch."""

    id: int
    dataset_id: int
    number: int
    parent_number: int | None
    digest: str
    note: str
    created_by: str | None
    created_at: datetime
    n_rows: int
    class_counts: dict[str, int]
    diff: dict[str, int]  # {"added", "removed", "relabelled"} against the parent
    base_path: str  # relative to SEEDLAB_HOME
    patch: dict[str, Any]  # {"labels": {row_id: label}, "excluded": [row_id, ...]}
    base_schema: dict[str, Any] | None = None  # None: the dataset's own schema
    base_sha256: str | None = None  # None: the dataset's own sha256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    dataset_id: int | None  # None: an SDK run on no Seedlab dataset
    dataset_name: str | None
    config: dict[str, Any]
    status: str
    cancel_requested: bool
    worker_id: str | None
    pid: int | None
    device: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    error: str | None
    parent_run_id: int | None
    sweep_id: int | None
    notes: str
    project_id: int
    archived: bool
    attempts: int
    owner: str | None = None  # the user who launched it; None: before auth
    # Baselines, warnings and summary of a completed run (engine/ml/verdict.py); None: no verdict.
    verdict: dict[str, Any] | None = None
    source: str = "builtin"  # builtin | recipe | sdk
    dataset_version: int | None = None  # the dataset version it trained on; None: version 1
    tags: list[str] = field(default_factory=list)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return max(0.0, (end - self.started_at).total_seconds())

    def last(self, key: str) -> float | None:
        entry = self.summary.get(key)
        return None if entry is None else entry["last"]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration_s"] = self.duration_s
        return out


@dataclass(frozen=True)
class ArtifactRecord:
    id: int
    run_id: int
    kind: str
    path: str
    bytes: int
    sha256: str
    created_at: datetime


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    max_concurrent: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    devices: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class JobRecord:
    id: int
    kind: str
    run_id: int
    params: dict[str, Any]
    status: str
    progress: str | None
    progress_fraction: float | None
    result: dict[str, Any] | None
    error: str | None
    requested_by: str
    worker_id: str | None
    pid: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass(frozen=True)
class SweepRecord:
    id: int
    name: str
    dataset_id: int | None  # None: a sweep over a recipe that reads no Seedlab dataset
    dataset_name: str | None
    project_id: int
    base_config: dict[str, Any]
    space: dict[str, Any]
    sampler: str
    pruner: str
    objective: str
    direction: str
    max_trials: int
    time_limit_s: float | None
    parallelism: int
    seed: int
    status: str
    best_run_id: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    owner: str | None = None
    dataset_version: int | None = None  # every trial's dataset version (None: no dataset)


@dataclass(frozen=True)
class RecipeRecord:
    """A registered script (db/recipes.py): its folder on the server, entry point, Python."""

    id: int
    name: str
    path: str
    entry: str
    python: str | None
    created_at: datetime
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
