"""The run list at scale: filter, sort and page thousands of runs without touching `metrics`.

Everything here reads `runs`, `run_tags` and `run_summaries` (latest value per run and key)
through indexes. A page is found as ids first (a narrow query: SQLite sorts ids, not rows
carrying the config JSON), then its 50 full rows are read by primary key. Sorted by a summary
metric, the ids come straight off `ix_run_summaries_key_last_value` in order, one runs lookup
each, stopping at the page's end; the count reads only indexes
(`ix_runs_project_id_archived_status_created_at` covers the run-side filters).

Params (RunConfig fields) live in the `runs.config` JSON. Sorting by any param and filtering
by model use SQLAlchemy's JSON path expressions, which compile to `JSON_EXTRACT` on SQLite and
`->>` on PostgreSQL; they scan the filtered runs' configs (no index), which stays in the tens
of milliseconds at 10,000 runs. Only the model is a filter; other params are columns and sorts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Engine, Select, bindparam, func, select

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
# Ids per IN (...) when reading a page's rows: well under SQLite's 32,766 bound parameters, so an
# export of every run still works.
_ID_CHUNK = 500


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
    # With one dataset in dataset_ids: only runs on this version of it (NULL counts as 1).
    dataset_version: int | None = None

    def __post_init__(self) -> None:
        bad = set(self.statuses) - set(RUN_STATUSES)
        if bad:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {sorted(bad)}")


def _passes(value: ColumnElement[Any], t: MetricThreshold) -> ColumnElement[bool]:
    compare = {">=": value >= t.value, "<=": value <= t.value, ">": value > t.value}
    return compare.get(t.op, value < t.value)


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
    if flt.dataset_version is not None:
        where.append(func.coalesce(runs.c.dataset_version, 1) == flt.dataset_version)
    if flt.models:
        where.append(runs.c.config["model"].as_string().in_(list(flt.models)))
    if flt.tags:
        tagged = select(run_tags.c.run_id).where(run_tags.c.tag.in_(list(flt.tags)))
        where.append(runs.c.id.in_(tagged))
    if flt.name_contains.strip():
        # icontains: SQLite's LIKE ignores case, PostgreSQL's does not; ILIKE/lower() agree.
        where.append(runs.c.name.icontains(flt.name_contains.strip(), autoescape=True))
    for t in flt.thresholds:
        passing = select(run_summaries.c.run_id).where(
            run_summaries.c.key == t.key, _passes(run_summaries.c.last_value, t)
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
    with reading(db) as conn:
        if sort.startswith(METRIC_PREFIX):
            ids = _ids_by_metric(
                conn, flt, sort.removeprefix(METRIC_PREFIX), descending, limit, offset
            )
        else:
            ids = _scalars(conn, _ids_by_column(conn, flt, sort, descending), limit, offset)
        rows: dict[int, Any] = {}
        summaries: dict[int, dict[str, dict[str, float]]] = {}
        tags: dict[int, list[str]] = {}
        by_ids = _select_runs().where(runs.c.id.in_(bindparam("ids", expanding=True)))
        for chunk in _chunks(ids):
            rows.update((r.id, r) for r in conn.execute(by_ids, {"ids": chunk}).all())
            summaries.update(_summaries(conn, chunk))
            tags.update(_tags(conn, chunk))
    return [_record(rows[i], summaries[i], tags[i]) for i in ids]


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


def _scalars(conn: Connection, stmt: Select, limit: int | None, offset: int) -> list[int]:
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return list(conn.execute(stmt).scalars().all())


def _ids_by_column(conn: Connection, flt: RunFilter, sort: str, descending: bool) -> Select:
    """Ids of the matching runs ordered by a run column, the dataset's name or a param."""
    stmt = select(runs.c.id).where(*_conditions(flt))
    if sort.startswith(PARAM_PREFIX):
        name = sort.removeprefix(PARAM_PREFIX)
        path = runs.c.config[name]
        order = path.as_float() if _param_is_numeric(conn, flt, name) else path.as_string()
        # Only a param can be missing; NULLS LAST on a NOT NULL column would keep SQLite from
        # reading an index in order (it puts NULLs first when ascending).
        direction = (order.desc() if descending else order.asc()).nulls_last()
    elif sort in SORT_COLUMNS:
        order = SORT_COLUMNS[sort]
        if sort == "dataset":
            stmt = stmt.outerjoin(datasets, datasets.c.id == runs.c.dataset_id)
        direction = order.desc() if descending else order.asc()
    else:
        raise ValueError(
            f"sort must be one of {', '.join(SORT_COLUMNS)}, {METRIC_PREFIX}<key> or "
            f"{PARAM_PREFIX}<name>; got {sort!r}"
        )
    return stmt.order_by(direction, runs.c.id.desc() if descending else runs.c.id.asc())


def _ids_by_metric(
    conn: Connection,
    flt: RunFilter,
    key: str,
    descending: bool,
    limit: int | None,
    offset: int,
) -> list[int]:
    """Runs with the metric, by its last value (read in order off (key, last_value, run_id)
    and stopping at the page's end), then the runs without it by id."""
    value, run_id = run_summaries.c.last_value, run_summaries.c.run_id
    on_key = [t for t in flt.thresholds if t.key == key]
    # A threshold on the sorted key is a range of that index rather than a second subquery.
    rest = replace(flt, thresholds=tuple(t for t in flt.thresholds if t.key != key))
    having = (
        select(run_id)
        .select_from(run_summaries.join(runs, runs.c.id == run_id))
        .where(run_summaries.c.key == key, *(_passes(value, t) for t in on_key), *_conditions(rest))
    )
    order = (value.desc(), run_id.desc()) if descending else (value.asc(), run_id.asc())
    ids = _scalars(conn, having.order_by(*order), limit, offset)
    if on_key or (limit is not None and len(ids) == limit):
        return ids  # a threshold on the key leaves out every run without it
    if ids or not offset:
        skip = 0
    else:  # the page starts past the last run with the metric
        skip = offset - conn.execute(select(func.count()).select_from(having.subquery())).scalar()
    with_key = select(run_summaries.c.run_id).where(run_summaries.c.key == key)
    lacking = (
        select(runs.c.id)
        .where(*_conditions(flt), runs.c.id.not_in(with_key))
        .order_by(runs.c.id.desc() if descending else runs.c.id.asc())
    )
    more = None if limit is None else limit - len(ids)
    return ids + _scalars(conn, lacking, more, max(0, skip))


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
