"""SQLAlchemy 2.0 declarative models. Constraint names are explicit so Alembic diffs stay stable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("completed", "failed", "cancelled")
DATASET_KINDS = ("tabular", "text", "image")
USER_ROLES = ("viewer", "member", "admin")
SHARE_KINDS = ("run", "compare", "model")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SqlDataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (CheckConstraint(f"kind IN {DATASET_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    task: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(500))
    schema: Mapped[dict] = mapped_column(JSON)
    n_rows: Mapped[int] = mapped_column(Integer)
    n_columns: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))  # relative to SEEDLAB_HOME
    source_filename: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    owner: Mapped[str | None] = mapped_column(String(100))  # user name; NULL: before auth


class SqlDatasetVersion(Base):
    """One immutable version of a dataset (engine/services/dataset_versions.py). Reading it is
    its base data (base_path) plus one CUMULATIVE patch {"labels": {row_id: label},
    "excluded": [row_id, ...]}: an edit stores a few KB, never a copy of the data."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    parent_number: Mapped[int | None] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    n_rows: Mapped[int] = mapped_column(Integer)
    class_counts: Mapped[dict] = mapped_column(JSON)
    diff: Mapped[dict] = mapped_column(JSON)
    base_path: Mapped[str] = mapped_column(String(1000))  # relative to SEEDLAB_HOME
    patch: Mapped[dict] = mapped_column(JSON)
    # The base's schema when a new upload made this version; NULL: the dataset's own schema.
    base_schema: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    base_sha256: Mapped[str | None] = mapped_column(String(64))  # NULL: the dataset's sha256


DEFAULT_PROJECT_ID = 1  # "Default", created by migration 0002


class SqlProject(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # The run pinned as this project's baseline (no foreign key: runs point at projects; the
    # run's deletion clears it).
    baseline_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SqlRun(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        Index("ix_runs_status_created_at", "status", "created_at"),
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_dataset_id", "dataset_id"),
        Index("ix_runs_project_id_archived_created_at", "project_id", "archived", "created_at"),
        Index(
            "ix_runs_project_id_archived_status_created_at",
            "project_id",
            "archived",
            "status",
            "created_at",
        ),
        Index("ix_runs_sweep_id", "sweep_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # NULL: a run the SDK logged without a Seedlab dataset (source "sdk").
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"))
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    pid: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    sweep_id: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), default=DEFAULT_PROJECT_ID
    )
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # How many times the run was resumed from its checkpoint (0 = never).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(100))  # user name; NULL: before auth
    # Who trained it: "builtin" (Seedlab's pipeline), "recipe" (a registered script), "sdk"
    # (the team's own code via `seedlab.init`). SDK runs are never requeued: nobody can re-run
    # a notebook.
    source: Mapped[str] = mapped_column(String(20), default="builtin", server_default="builtin")
    # A completed run's baselines, warnings and one-line summary (engine/ml/verdict.py);
    # NULL: no verdict (the run did not complete, or completed before verdicts existed).
    verdict: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # The dataset version it trained on (dataset_versions.number); NULL: before versions = 1.
    dataset_version: Mapped[int | None] = mapped_column(Integer)


SWEEP_STATUSES = ("running", "completed", "cancelled", "failed")


class SqlSweep(Base):
    """A hyperparameter search: its space, sampler and budget. Its trials are ordinary runs
    (runs.sweep_id); the engine's worker is the only process that adds trials or ends it."""

    __tablename__ = "sweeps"
    __table_args__ = (CheckConstraint(f"status IN {SWEEP_STATUSES!r}", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # NULL: a sweep over a recipe that reads no Seedlab dataset.
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"))
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), default=DEFAULT_PROJECT_ID
    )
    # The dataset version every trial trains on (NAME@N when the sweep began); NULL: no dataset.
    dataset_version: Mapped[int | None] = mapped_column(Integer)
    base_config: Mapped[dict] = mapped_column(JSON)
    space: Mapped[dict] = mapped_column(JSON)
    sampler: Mapped[str] = mapped_column(String(20))
    pruner: Mapped[str] = mapped_column(String(20))
    objective: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(10))
    max_trials: Mapped[int] = mapped_column(Integer)
    time_limit_s: Mapped[float | None] = mapped_column(Float)
    parallelism: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="running")
    best_run_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    owner: Mapped[str | None] = mapped_column(String(100))  # its trials get the same owner


class SqlRunTag(Base):
    """One row per (run, tag): indexable tag filters on any SQL backend, unlike a JSON list."""

    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class SqlMetric(Base):
    __tablename__ = "metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)  # NULL = NaN (SQLite has no NaN)
    wall_time: Mapped[float] = mapped_column(Float)


class SqlRunSummary(Base):
    """Latest and extreme value per (run, key): what lists and comparisons read."""

    __tablename__ = "run_summaries"
    __table_args__ = (Index("ix_run_summaries_key_last_value", "key", "last_value", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    last_value: Mapped[float] = mapped_column(Float)
    last_step: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float] = mapped_column(Float)
    max_value: Mapped[float] = mapped_column(Float)


class SqlMetricDigest(Base):
    """A finished run's series of one key at a fixed resolution (db/metrics.digest_of): what the
    charts draw of it, stored so a first read of 100 long runs reads 100 rows, not 1M points.

    Valid while (last_step, last_value, min_value, max_value) equal the run's summary of the key
    (db/metrics.series_versions): a point added or rewritten since makes it stale (ignored, then
    rewritten). The *_bytes are little-endian numpy arrays: steps int64, values and wall
    times float64.
    `points`, `first_step`, `final_step` are the whole series' row count and step range (NaN rows
    included): the bucket grid of a coarser drawing is derived from them.
    """

    __tablename__ = "metric_digests"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    resolution: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer)
    last_value: Mapped[float] = mapped_column(Float)
    min_value: Mapped[float] = mapped_column(Float)
    max_value: Mapped[float] = mapped_column(Float)
    points: Mapped[int] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(Integer)
    final_step: Mapped[int] = mapped_column(Integer)
    step_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    value_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    wall_time_bytes: Mapped[bytes] = mapped_column(LargeBinary)


class SqlArtifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(String(1000))  # relative to the run's folder
    bytes: Mapped[int] = mapped_column(BigInteger)  # checkpoints can pass 2 GiB
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SqlWorker(Base):
    """One row per engine worker process; its heartbeat tells the dashboard the engine is alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    max_concurrent: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    # What the worker can schedule on: [{"name", "kind", "index", "memory_total", ...}], refreshed
    # with the heartbeat so the Engine page can show devices of a worker on another machine.
    devices: Mapped[list | None] = mapped_column(JSON)


class SqlUser(Base):
    """A dashboard login. Its failed attempts are rows of login_attempts, its sessions rows of
    sessions, so a restart keeps both."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {USER_ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # A session logged in before this time is over (password changed or user re-added).
    password_changed_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)


LOGIN_OUTCOMES = ("pending", "failed", "ok", "refused")


class SqlLoginAttempt(Base):
    """One login attempt, written before its password is checked ("pending") and finished after.
    Counting pending and failed rows per user name and per client address, in the transaction
    that adds the row, is what keeps parallel attempts within the limits (engine/services/
    accounts.py). `cleared`: forgiven by an admin's unlock, a new password, or a later
    successful login of that user from that address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        CheckConstraint(f"outcome IN {LOGIN_OUTCOMES!r}", name="outcome"),
        Index("ix_login_attempts_user_name_at", "user_name", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
        Index("ix_login_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The name as typed (an unknown name counts like a known one, so counts reveal nothing).
    user_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(10))
    cleared: Mapped[bool] = mapped_column(Boolean, default=False)


class SqlSession(Base):
    """A dashboard session. The browser's cookie holds a random id; only its SHA-256 is stored,
    so a copy of the database opens no session. Revoked at logout, on a new password, a new
    role or the user's removal; over at `expires_at` in any case."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_name", "user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlAuditEntry(Base):
    """Who did what to which thing, when. Append-only; names are copied, not referenced, so an
    entry outlives the user and the run it names."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    user_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")


MODEL_STAGES = ("none", "staging", "production", "archived")


class SqlModelVersion(Base):
    """A completed run's model registered under a name (the model registry).

    Versions count up per name. At most one version per name is in `production`: a partial
    unique index enforces it in the database, whatever the writer (db/registry.py demotes the
    previous one in the same transaction). A run with versions cannot be deleted (RESTRICT).
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(f"stage IN {MODEL_STAGES!r}", name="stage"),
        UniqueConstraint("name", "version"),
        Index(
            "ux_model_versions_one_production",
            "name",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
        Index("ix_model_versions_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"))
    stage: Mapped[str] = mapped_column(String(20), default="none")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    stage_changed_at: Mapped[datetime] = mapped_column(DateTime)


JOB_KINDS = ("export", "compress", "importance")
JOB_STATUSES = ("queued", "running", "completed", "failed")


class SqlJob(Base):
    """A long action on a completed run (export, compression, importance) that a page asked for:
    the engine's worker claims it and runs it in a child process (engine/execution/job_runner.py),
    so the web process never waits on one. The page reads status, progress and result here."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_run_id_created_at", "run_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # A deleted run takes its jobs with it: their files were in its folder.
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[str | None] = mapped_column(Text)  # a phrase: "Checking with onnxruntime…"
    progress_fraction: Mapped[float | None] = mapped_column(Float)  # 0..1 when known
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(100))
    worker_id: Mapped[str | None] = mapped_column(String(100))
    pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlApiToken(Base):
    """A user's token for the HTTP API (/api/v1, e.g. the SDK logging remotely). Only a SHA-256
    of the token is kept: the token is shown once, when made. Removing the user removes them."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, so a list can tell tokens apart without revealing them.
    prefix: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlRemoteStream(Base):
    """A run the SDK logs over the HTTP API: the client's key for it (so a create sent twice,
    its answer lost, makes one run) and how many of its spool lines the server applied (so a
    batch sent again after a lost answer is not applied twice)."""

    __tablename__ = "remote_streams"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    client_key: Mapped[str] = mapped_column(String(64), unique=True)
    lines_applied: Mapped[int] = mapped_column(Integer, default=0)


class SqlRecipe(Base):
    """A team's own training code registered by an admin: a folder on the server (or a git
    checkout) with an entry script, run by the engine with `python` (NULL: the server's)."""

    __tablename__ = "recipes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(String(1000))  # absolute folder on the server
    entry: Mapped[str] = mapped_column(String(500))  # relative to path, e.g. train.py
    python: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    owner: Mapped[str | None] = mapped_column(String(100))


ALERT_EVENTS = ("completed", "failed", "cancelled", "warning", "metric", "sweep_ended")
ALERT_CHANNELS = ("webhook", "email")
DELIVERY_STATUSES = ("pending", "sent", "failed")


class SqlAlertRule(Base):
    """Who is told what (engine/services/alerts.py): the runs of a project, or one run, and the
    events that trigger it; a webhook URL or an e-mail address."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(f"channel IN {ALERT_CHANNELS!r}", name="channel"),
        CheckConstraint("project_id IS NOT NULL OR run_id IS NOT NULL", name="scope"),
        Index("ix_alert_rules_project_id", "project_id"),
        Index("ix_alert_rules_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign keys: a rule outlives nothing it points at for long (deleting a project or a
    # run leaves a rule that never fires; `seedlab alerts remove` drops it).
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    events: Mapped[str] = mapped_column(String(200))  # comma list of ALERT_EVENTS
    metric_key: Mapped[str | None] = mapped_column(String(250))
    metric_op: Mapped[str | None] = mapped_column(String(10))  # "above" | "below"
    metric_value: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class SqlAlertDelivery(Base):
    """The outbox: one message to send for one rule, event and subject ("run:12", "sweep:3").
    UNIQUE (rule_id, event, subject): an event is enqueued, so delivered, at most once."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("rule_id", "event", "subject"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status"),
        Index("ix_alert_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # JSON text, as sent to a webhook
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlAppSetting(Base):
    """Settings an admin changes from the Admin page (the SMTP server); each one overrides its
    SEEDLAB_* variable."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SqlShareLink(Base):
    """A read-only link to one view (a run, a comparison, a model's Playground) for people
    without an account. Only a SHA-256 of the link's token is kept: the URL is shown once, when
    made. `target` says what the link opens and nothing else: {"run": 3}, {"runs": [3, 4, 5]},
    {"model": "churn"} or, for a Playground on a run not registered, {"model_run": 7}."""

    __tablename__ = "share_links"
    __table_args__ = (
        CheckConstraint(f"kind IN {SHARE_KINDS!r}", name="kind"),
        Index("ix_share_links_created_by", "created_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    target: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)  # NULL: never
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    last_opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    opens: Mapped[int] = mapped_column(Integer, default=0)


class SqlServedModel(Base):
    """A registered model name answering predictions over HTTP (engine/services/serving.py): its
    production version, whichever that is at each request. Only a SHA-256 of the model's token
    is kept (the token is shown once). No foreign key: the registry has no table of names, and a
    name whose versions are all removed simply has nothing to serve (404)."""

    __tablename__ = "served_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, so a page can tell tokens apart without revealing them.
    token_prefix: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    token_created_at: Mapped[datetime] = mapped_column(DateTime)


class SqlServeRequest(Base):
    """One request to a served model: the request log behind the Models page's table and
    latency figures. Pruned to the newest rows per model (db/writes/serving.py)."""

    __tablename__ = "serve_requests"
    __table_args__ = (Index("ix_serve_requests_model_id", "model", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)  # None: refused before one was picked
    at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[int] = mapped_column(Integer)  # the HTTP status answered
    latency_ms: Mapped[float] = mapped_column(Float)
    items: Mapped[int] = mapped_column(Integer, default=0)  # rows, texts or images predicted
    client: Mapped[str] = mapped_column(String(100))  # the caller's address
    error: Mapped[str | None] = mapped_column(Text)  # the sentence answered, for a refusal


datasets = SqlDataset.__table__
dataset_versions = SqlDatasetVersion.__table__
runs = SqlRun.__table__
projects = SqlProject.__table__
sweeps = SqlSweep.__table__
run_tags = SqlRunTag.__table__
metrics = SqlMetric.__table__
run_summaries = SqlRunSummary.__table__
metric_digests = SqlMetricDigest.__table__
artifacts = SqlArtifact.__table__
workers = SqlWorker.__table__
users = SqlUser.__table__
audit_log = SqlAuditEntry.__table__
api_tokens = SqlApiToken.__table__
remote_streams = SqlRemoteStream.__table__
model_versions = SqlModelVersion.__table__
jobs = SqlJob.__table__
login_attempts = SqlLoginAttempt.__table__
sessions = SqlSession.__table__
recipes = SqlRecipe.__table__
alert_rules = SqlAlertRule.__table__
alert_deliveries = SqlAlertDelivery.__table__
app_settings = SqlAppSetting.__table__
share_links = SqlShareLink.__table__
served_models = SqlServedModel.__table__
serve_requests = SqlServeRequest.__table__
