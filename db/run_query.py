"""The run list at scale: filter, sort and page thousands of runs without touching `metrics`.

Everything here reads `runs`, `run_tags` and `run_summaries` (latest value per run and key)
through indexes: a page of 50 runs sorted by a summary metric costs one range scan of
`ix_run_summaries_key_last_value` plus two primary-key lookups per shown run.

Params (RunConfig fields) live in the `runs.config` JSON. Sorting by any param and filtering
by model use SQLAlchemy's JSON path expressions, which compile to `JSON_EXTRACT` on SQLite and
`->>` on PostgreSQL; they scan the filtered runs' configs (no index), which stays in the tens
of milliseconds at 10,000 runs. Only the model is a filter; other params are columns and sorts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, and_, func, select

from db.models import RUN_STATUSES, datasets, run_summaries, run_tags, runs
from db.records import RunRecord
from db.runs import _record, _select_runs, _summaries, _tags
from db.session import reading

ThresholdOp = Literal[">=", "<=", ">", "<"]
THRESHOLD_OPS: tuple[ThresholdOp, ...] = (">=", "<=", ">", "<")
# Plain run columns one can sort by; "metric:<key>" and "param:<name>" sort by a summary metric
# (its last value) or a config field.
SORT_COLUMNS = {
    "created_at": runs.c.created_at,
    "id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "dataset": datasets.c.name,
}
METRIC_PREFIX = "metric:"
PARAM_PREFIX = "param:"


@dataclass(frozen=True)
class MetricThreshold:
    """Keep runs whose last value of `key` compares with `value` (runs without it drop out)."""

    key: str
    op: ThresholdOp
    value: float

    def __post_init__(self) -> None:
        if self.op not in THRESHOLD_OPS:
            raise ValueError(
                f"threshold op must be one of {', '.join(THRESHOLD_OPS)}; got {self.op!r}"
            )


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list shows. Empty fields do not filter; several values of one field mean
    "any of them" (tags: runs with at least one of the tags)."""

    project_id: int | None = None  # None: every project
    statuses: tuple[str, ...] = ()
    dataset_ids: tuple[int, ...] = ()
    models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    name_contains: str = ""
    thresholds: tuple[MetricThreshold, ...] = ()
    include_archived: bool = False
    run_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        bad = set(self.statuses) - set(RUN_STATUSES)
        if bad:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {sorted(bad)}")


def _conditions(flt: RunFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.project_id is not None:
        where.append(runs.c.project_id == flt.project_id)
    if not flt.include_archived:
        where.append(runs.c.archived.is_(False))
    if flt.run_ids:
        where.append(runs.c.id.in_(list(flt.run_ids)))
    if flt.statuses:
        where.append(runs.c.status.in_(list(flt.statuses)))
    if flt.dataset_ids:
        where.append(runs.c.dataset_id.in_(list(flt.dataset_ids)))
    if flt.models:
        where.append(runs.c.config["model"].as_string().in_(list(flt.models)))
    if flt.tags:
        tagged = select(run_tags.c.run_id).where(run_tags.c.tag.in_(list(flt.tags)))
        where.append(runs.c.id.in_(tagged))
    if flt.name_contains.strip():
        # icontains: SQLite's LIKE ignores case, PostgreSQL's does not; ILIKE/lower() agree.
        where.append(runs.c.name.icontains(flt.name_contains.strip(), autoescape=True))
    for t in flt.thresholds:
        value = run_summaries.c.last_value
        compare = {">=": value >= t.value, "<=": value <= t.value, ">": value > t.value}
        passing = select(run_summaries.c.run_id).where(
            run_summaries.c.key == t.key, compare.get(t.op, value < t.value)
        )
        where.append(runs.c.id.in_(passing))
    return where


def _param_is_numeric(conn: Any, flt: RunFilter, name: str) -> bool:
    """Whether a param holds numbers (sort numerically) or text; judged on one filtered run."""
    sample = conn.execute(
        select(runs.c.config).where(*_conditions(flt)).order_by(runs.c.id.desc()).limit(1)
    ).scalar()
    value = (sample or {}).get(name)
    return isinstance(value, int | float) and not isinstance(value, bool)


def query_runs(
    db: Engine,
    flt: RunFilter = RunFilter(),
    *,
    sort: str = "created_at",
    descending: bool = True,
    limit: int | None = 50,
    offset: int = 0,
) -> list[RunRecord]:
    """One page of runs matching `flt`, sorted by `sort`, each with summaries and tags.

    Runs without the sorted metric or param come last in either direction.
    """
    stmt = _select_runs().where(*_conditions(flt))
    with reading(db) as conn:
        if sort.startswith(METRIC_PREFIX):
            key = sort.removeprefix(METRIC_PREFIX)
            stmt = stmt.outerjoin(
                run_summaries,
                and_(run_summaries.c.run_id == runs.c.id, run_summaries.c.key == key),
            )
            order: ColumnElement[Any] = run_summaries.c.last_value
        elif sort.startswith(PARAM_PREFIX):
            name = sort.removeprefix(PARAM_PREFIX)
            path = runs.c.config[name]
            order = path.as_float() if _param_is_numeric(conn, flt, name) else path.as_string()
        elif sort in SORT_COLUMNS:
            order = SORT_COLUMNS[sort]
        else:
            raise ValueError(
                f"sort must be one of {', '.join(SORT_COLUMNS)}, {METRIC_PREFIX}<key> or "
                f"{PARAM_PREFIX}<name>; got {sort!r}"
            )
        direction = order.desc() if descending else order.asc()
        tie = runs.c.id.desc() if descending else runs.c.id.asc()
        stmt = stmt.order_by(direction.nulls_last(), tie)
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        rows = conn.execute(stmt).all()
        ids = [r.id for r in rows]
        summaries, tags = _summaries(conn, ids), _tags(conn, ids)
    return [_record(r, summaries[r.id], tags[r.id]) for r in rows]


def count_runs(db: Engine, flt: RunFilter = RunFilter()) -> int:
    """How many runs match `flt` (for "page 3 of 40")."""
    with reading(db) as conn:
        return int(
            conn.execute(select(func.count()).select_from(runs).where(*_conditions(flt))).scalar()
        )


def runs_by_ids(db: Engine, run_ids: Iterable[int]) -> list[RunRecord]:
    """The runs with these ids, archived or not, in the order given; missing ids are skipped."""
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    if not ids:
        return []
    found = query_runs(db, RunFilter(run_ids=tuple(ids), include_archived=True), limit=None)
    by_id = {r.id: r for r in found}
    return [by_id[i] for i in ids if i in by_id]


def _in_project(project_id: int | None) -> Any:
    stmt = select(runs.c.id)
    return stmt if project_id is None else stmt.where(runs.c.project_id == project_id)


def metric_keys(db: Engine, project_id: int | None = None) -> list[str]:
    """Summary metric keys any run of the project has (sortable and filterable columns)."""
    stmt = (
        select(run_summaries.c.key)
        .where(run_summaries.c.run_id.in_(_in_project(project_id)))
        .distinct()
    )
    with reading(db) as conn:
        return sorted(r[0] for r in conn.execute(stmt).all())


def tag_names(db: Engine, project_id: int | None = None) -> list[str]:
    stmt = select(run_tags.c.tag).where(run_tags.c.run_id.in_(_in_project(project_id))).distinct()
    with reading(db) as conn:
        return sorted(r[0] for r in conn.execute(stmt).all())


def model_names(db: Engine, project_id: int | None = None) -> list[str]:
    model = runs.c.config["model"].as_string()
    stmt = select(model).distinct()
    if project_id is not None:
        stmt = stmt.where(runs.c.project_id == project_id)
    with reading(db) as conn:
        return sorted(str(r[0]) for r in conn.execute(stmt).all() if r[0] is not None)


def param_names(db: Engine, project_id: int | None = None, sample: int = 200) -> list[str]:
    """Config fields of the newest `sample` runs: configs share one schema, so a sample of
    recent runs names every field without reading 10,000 JSON documents."""
    stmt = select(runs.c.config).order_by(runs.c.id.desc()).limit(sample)
    if project_id is not None:
        stmt = stmt.where(runs.c.project_id == project_id)
    with reading(db) as conn:
        configs = [r[0] or {} for r in conn.execute(stmt).all()]
    return sorted({k for c in configs for k in c})
