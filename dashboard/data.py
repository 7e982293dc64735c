"""What every page shares: the DB connection, cached reads, status colours, error display.

The dashboard only reads and writes *requests* (a queued run, a cancel flag); the engine does
the work. So everything here is a thin layer over `db.*` and the engine's pure helpers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from db import datasets as dataset_store
from db import workers as worker_store
from db.records import DatasetRecord, RunRecord
from db.session import get_db as make_db
from engine.core import catalog, verdicts
from engine.core.catalog import TABLE_METRICS
from engine.core.display_text import display_text
from engine.core.errors import SeedlabError
from engine.core.formatting import format_duration
from engine.core.settings import Settings, SettingsError
from engine.services.permissions import Actor

log = logging.getLogger("seedlab.dashboard")

# Page paths, relative to app.py: st.switch_page and AppTest both want these file paths.
HOME_PAGE = "views/home.py"
DATASETS_PAGE = "views/datasets.py"
NEW_RUN_PAGE = "views/new_run.py"
RUNS_PAGE = "views/runs.py"
RUN_PAGE = "views/run_detail.py"
COMPARE_PAGE = "views/compare.py"
PLAYGROUND_PAGE = "views/playground.py"

ENGINE_HINT = "Start it with `make run` or `seedlab worker`."
# A worker beats every few seconds; three missed beats means it is gone.
WORKER_ALIVE_WITHIN_S = 15

# One colour per status everywhere: st.badge and markdown colour names, and the matching hex
# for table cells (a dataframe cell cannot hold a badge; coloured option pills are the closest).
STATUS_COLORS = {
    "queued": "gray",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "orange",
}
STATUS_HEX = {
    "queued": "#a3a8b84d",
    "running": "#1c83e14d",
    "completed": "#21c3544d",
    "failed": "#ff4b4b4d",
    "cancelled": "#ffa4214d",
}
STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/progress_activity:",
    "completed": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}
ACTIVE_STATUSES = ("queued", "running")
# A completed run with warnings is shown amber with what is wrong ("completed · overfitting"),
# one without a verdict gray: only a run that passed its checks gets the green tick.
WARNED_COLOR, WARNED_HEX, WARNED_ICON = "yellow", "#ffbd454d", ":material/warning:"
NO_VERDICT_ICON = ":material/help:"


def _status_cell_colors() -> dict[str, str]:
    """Every text a status cell can show → its colour (engine/core/verdicts.py)."""
    colors = dict(STATUS_HEX)
    for text in verdicts.status_options():
        if text == "completed":
            continue
        no_verdict = text.endswith(verdicts.NO_VERDICT)
        colors[text] = STATUS_HEX["queued"] if no_verdict else WARNED_HEX
    return colors


# ---------------------------------------------------------------- connection


def get_settings() -> Settings:
    """The settings; a bad SEEDLAB_* value stops the page with its one sentence (app.py asks
    first, so every page meets it before anything else)."""
    # Read per call (it is cheap): tests and `SEEDLAB_HOME=… streamlit run` set the env var, and
    # a cached Settings would keep pointing at the first home this process saw.
    try:
        return Settings.from_env()
    except SettingsError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


@st.cache_resource(show_spinner=False)
def _engine_for(db_url: str, home: str) -> Engine:
    # Keyed on the URL (and home, which get_db creates): a new SEEDLAB_HOME gets a new pool.
    return make_db(Settings(home=Path(home), db_url=db_url))


@st.cache_resource(show_spinner=False)
def _schema_ready(db_url: str, home: str) -> bool:
    # Raising (not returning False) keeps a not-yet-migrated DB out of the cache, so the page
    # works as soon as someone runs the migration, without restarting the dashboard.
    from db.migrate import current_revision, head_revision

    db = _engine_for(db_url, home)
    current, head = current_revision(db), head_revision()
    if current != head:
        where = db.url.render_as_string(hide_password=True)
        raise SeedlabError(
            f"The database at {where} is not set up for this version of Seedlab (schema "
            f"{current or 'empty'}, expected {head}). Run `seedlab init` (or `make run`, which "
            "does it), then reload this page."
        )
    return True


def get_db() -> Engine:
    """The SQLAlchemy Engine for the current SEEDLAB_HOME / SEEDLAB_DB_URL; stops the page with
    a sentence when the database is missing or on another schema version."""
    settings = get_settings()
    try:
        _schema_ready(settings.db_url, str(settings.home))
    except SeedlabError as exc:
        st.error(str(exc))
        st.stop()
    except Exception:
        log.exception("cannot open the database %s", settings.db_url_shown)
        st.error(
            "Cannot open the Seedlab database. Check SEEDLAB_HOME / SEEDLAB_DB_URL; the details "
            "are in the dashboard's console log."
        )
        st.stop()
    return _engine_for(settings.db_url, str(settings.home))


# ---------------------------------------------------------------- cached reads


@st.cache_data(ttl=10, show_spinner=False)
def _datasets_cached(db_url: str, home: str) -> list[DatasetRecord]:
    return dataset_store.list_datasets(_engine_for(db_url, home))


def datasets() -> list[DatasetRecord]:
    """All datasets, oldest first (cached a few seconds; cleared on every write we make)."""
    settings = get_settings()
    return _datasets_cached(settings.db_url, str(settings.home))


def _dataset(dataset_id: int, path: str) -> DatasetRecord:
    for record in datasets():
        if record.id == dataset_id and record.path == path:
            return record
    raise SeedlabError(f"Dataset #{dataset_id} no longer exists. Pick another one.")


# A dataset never changes once stored (a new upload gets a new id and path), so its derived
# views can stay cached for long; only small slices are cached, never the whole frame.
@st.cache_data(ttl=3600, show_spinner=False, max_entries=32)
def dataset_preview(dataset_id: int, path: str, rows: int = 20) -> pd.DataFrame:
    from engine.data.stored import preview

    return shown_frame(preview(get_settings(), _dataset(dataset_id, path), rows))


def shown_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A table of user data as it may be shown: column names and text cells through
    display_text, so a right-to-left override in a cell cannot reorder what is around it."""
    shown = frame.rename(columns=display_text)
    for column in shown.select_dtypes(include=["object", "string"]).columns:
        shown[column] = shown[column].map(
            lambda v: display_text(v) if isinstance(v, str) else v, na_action="ignore"
        )
    return shown


@st.cache_data(ttl=3600, show_spinner=False, max_entries=32)
def dataset_target(dataset_id: int, path: str) -> pd.Series:
    from engine.data.stored import load_frame

    record = _dataset(dataset_id, path)
    return load_frame(get_settings(), record, columns=[record.target])[record.target]


def clear_caches() -> None:
    """Call after any write, so the next read sees it."""
    _datasets_cached.clear()


def engine_alive(db: Engine) -> bool:
    alive = bool(worker_store.live_workers(db, within_s=WORKER_ALIVE_WITHIN_S))
    if not alive:
        # No engine to settle runs it left `running`: this read does (engine/services/recovery.py).
        from engine.services.recovery import settle_for_readers

        settle_for_readers(get_settings(), db)
    return alive


# ---------------------------------------------------------------- actions


def queue_demo_run(db: Engine, actor: Actor) -> int:
    """Queue the demo run (handwritten digits, engine/data/demo.py) as `actor`, registering the
    demo datasets first if needed."""
    from engine.services.runs import queue_demo_run as queue

    run_id = queue(get_settings(), db, actor)
    clear_caches()
    return run_id


def open_run(run_id: int) -> None:
    st.switch_page(RUN_PAGE, query_params={"run": str(run_id)})


def runs_table(runs: list[RunRecord], key: str) -> None:
    """The runs as a table (status colours, metrics); selecting a row opens that run."""
    table = st.dataframe(
        runs_frame(runs),
        hide_index=True,
        column_config=runs_column_config(),
        placeholder="—",
        on_select="rerun",
        selection_mode="single-row",
        key=key,
    )
    if table.selection.rows:
        open_run(runs[table.selection.rows[0]].id)


@contextmanager
def shown_errors(action: str) -> Iterator[None]:
    """Turn errors into one sentence on the page: ours as written, anything else as a bug.

    `action` completes "Something went wrong while …". Streamlit's rerun/stop signals derive
    from BaseException, so st.switch_page and st.rerun pass through untouched.
    """
    try:
        yield
    except SeedlabError as exc:
        # Our messages quote user text (dataset, column and run names): shown literally.
        st.error(md_message(str(exc)), icon=":material/error:")
    except Exception:
        log.exception("dashboard error while %s", action)
        st.error(
            f"Something went wrong while {action}. This is a bug in Seedlab; the details are in "
            "the dashboard's console log.",
            icon=":material/bug_report:",
        )


# ---------------------------------------------------------------- formatting


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&])")


def md_text(text: str) -> str:
    """User text made literal for Streamlit markdown (titles, captions): no links, emphasis,
    colour directives, LaTeX or HTML entities can come from a dataset or run name, and no bidi
    control can reorder the text around it (engine/core/display_text.py). The backslashes
    only escape: markdown does not show them (code spans and plain widgets would: not there)."""
    return _MD_SPECIAL.sub(r"\\\1", display_text(text)).replace("\n", " ")


def md_code(text: str) -> str:
    """User text as a markdown code span: shown exactly, with no escape backslashes (markdown
    shows a code span's backslashes). The fence is longer than any run of backticks inside."""
    shown = display_text(text).replace("\n", " ")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", shown)), default=0) + 1)
    # A space each side only where a backtick would touch the fence (markdown strips it).
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


# What can make markdown act (links, images, HTML, LaTeX); emphasis and code spans cannot.
_MD_ACTIVE = re.compile(r"([\\\[\]<>!$])")


def md_message(text: str) -> str:
    """A sentence of ours that quotes user text (an error naming a dataset or column), made
    inert for markdown while it stays readable: field names keep their underscores."""
    return _MD_ACTIVE.sub(r"\\\1", display_text(text))


def status_markdown(status: str) -> str:
    """A coloured dot and the status, for markdown labels (st.metric, captions)."""
    return f":{STATUS_COLORS.get(status, 'gray')}[●] {status}"


def status_badge(status: str, verdict: dict | None = None) -> None:
    """The status as a badge. A completed run says what is wrong with it, in amber, or that it
    has no verdict, in gray; only a completed run whose checks all passed is green."""
    text = verdicts.status_text(status, verdict)
    if text == status:
        st.badge(status, color=STATUS_COLORS.get(status, "gray"), icon=STATUS_ICONS.get(status))
    elif text.endswith(verdicts.NO_VERDICT):
        st.badge(
            text,
            color="gray",
            icon=NO_VERDICT_ICON,
            help="This run was not compared with baselines (it finished before Seedlab did "
            "that), so nothing says whether its result is any good.",
        )
    else:
        found = verdicts.warnings_of(verdict)
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        st.badge(text + more, color=WARNED_COLOR, icon=WARNED_ICON)


def _browser_zone() -> ZoneInfo | None:
    try:
        name = st.context.timezone
    except Exception:  # no browser (AppTest, bare mode)
        return None
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_time(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time in the browser's time zone, or UTC when it is unknown.

    Returned naive (wall-clock time): table columns of tz-aware values trip a pandas 3
    deprecation inside st.dataframe.
    """
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    zone = _browser_zone()
    return (aware.astimezone(zone) if zone else aware).replace(tzinfo=None)


def format_time(value: datetime | None) -> str:
    shown = local_time(value)
    if shown is None:
        return "—"
    suffix = "" if _browser_zone() else " UTC"
    return shown.strftime("%Y-%m-%d %H:%M") + suffix


def effective_task(run: RunRecord, dataset: DatasetRecord | None) -> str:
    """What the engine trains (catalog.effective_task); a run whose dataset is gone counts as
    classification."""
    dataset_task = dataset.task if dataset is not None else "classification"
    return catalog.effective_task(run.config.get("task", "auto"), dataset_task)


def runs_frame(runs: list[RunRecord]) -> pd.DataFrame:
    """The run table every page shows: one row per run, table metrics that any run has."""
    metric_keys = [k for k in TABLE_METRICS if any(k in r.summary for r in runs)]
    kinds = {d.id: d.kind for d in datasets()}  # the family that trained: a CNN, not "auto"
    rows = []
    for run in runs:
        row = {
            "id": run.id,
            "name": display_text(run.name),
            "dataset": None if run.dataset_name is None else display_text(run.dataset_name),
            "model": catalog.model_summary(run.config, kinds.get(run.dataset_id)),
            # A list: shown as a coloured pill (runs_column_config); says what is wrong.
            "status": [verdicts.status_text(run.status, run.verdict)],
            "verdict": verdicts.short_verdict(run.status, run.verdict),
            "created": local_time(run.created_at),
            "duration": format_duration(run.duration_s),
        }
        for key in metric_keys:
            row[key] = run.last(key)
        row["open"] = f"run?run={run.id}"
        rows.append(row)
    columns = [
        "id",
        "name",
        "status",
        "verdict",
        "dataset",
        "model",
        *metric_keys,
        "duration",
        "created",
        "open",
    ]
    return pd.DataFrame(rows, columns=columns)


def runs_column_config() -> dict:
    from engine.core.catalog import metric_label

    config: dict = {
        "id": st.column_config.NumberColumn("id", format="%d", width="small"),
        "name": st.column_config.TextColumn("name"),
        "status": st.column_config.MultiselectColumn(
            "status",
            options=list(_status_cell_colors()),
            color=list(_status_cell_colors().values()),
            width=180,
        ),
        "verdict": st.column_config.TextColumn(
            "verdict", help="How the run compares with simple baselines, or what is wrong"
        ),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        # Relative link: resolves next to the current page, so it also works behind a
        # reverse proxy that serves the dashboard under a path prefix.
        "open": st.column_config.LinkColumn("link", display_text="open ↗", width="small"),
    }
    for key in TABLE_METRICS:
        config[key] = st.column_config.NumberColumn(metric_label(key), format="%.4f")
    return config


# ---------------------------------------------------------------- one-shot messages


def flash(message: str, kind: str = "success") -> None:
    """Show `message` once on the next run (survives the st.rerun that follows a write)."""
    st.session_state["_seedlab_flash"] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop("_seedlab_flash", None)
    if item is None:
        return
    kind, message = item
    {"success": st.success, "info": st.info, "warning": st.warning}.get(kind, st.info)(message)


def query_int(name: str) -> int | None:
    """An integer query parameter (?run=7), or None when absent or not a number."""
    raw = st.query_params.get(name)
    if raw is None or not str(raw).strip().isdigit():
        return None
    return int(str(raw).strip())
