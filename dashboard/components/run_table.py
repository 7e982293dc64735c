"""The Runs table's pieces that need no Streamlit: URL state, the query it stands for, the
frame it shows and the CSV it exports (tested directly)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from db import datasets as dataset_store
from db import run_query
from db.models import RUN_STATUSES
from db.records import RunRecord
from db.run_query import METRIC_PREFIX, PARAM_PREFIX, MetricThreshold, RunFilter
from engine.core.catalog import metric_label, model_summary
from engine.core.csv_safe import to_safe_csv
from engine.core.display_text import display_text
from engine.core.metric_info import direction, headline_metrics
from engine.core.verdicts import short_verdict

PAGE_SIZES = (25, 50, 100, 200)
OPS = {"ge": ">=", "le": "<="}
EXPORT_LIMIT = 100_000


def _split(text: str | None) -> list[str]:
    return [p for p in (text or "").split(",") if p.strip()]


def parse_ids(text: str | None) -> list[int]:
    return [int(p) for p in _split(text) if p.strip().isdigit()]


@dataclass
class TableState:
    """Everything a Runs view is: filters, sort, page, columns and the runs picked to compare.
    Round-trips through URL query parameters, so a view can be shared as a link."""

    statuses: list[str] = field(default_factory=list)
    dataset_ids: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    name: str = ""
    metric: str | None = None
    op: str = "ge"
    value: float | None = None
    archived: bool = False
    sort: str = "created_at"
    descending: bool = True
    page: int = 1
    page_size: int = 50
    columns: list[str] | None = None  # None: the default columns
    selected: list[int] = field(default_factory=list)
    version: int | None = None  # with one dataset chosen: only runs on this version of it

    def to_params(self) -> dict[str, str]:
        """Only what differs from the defaults, so a plain view has a plain URL."""
        params = {
            "status": ",".join(self.statuses),
            "dataset": ",".join(map(str, self.dataset_ids)),
            "model": ",".join(self.models),
            "tag": ",".join(self.tags),
            "q": self.name,
            "metric": self.metric or "",
            "op": self.op if self.metric else "",
            "value": "" if self.value is None or not self.metric else repr(self.value),
            "archived": "1" if self.archived else "",
            "sort": "" if self.sort == "created_at" else self.sort,
            "asc": "" if self.descending else "1",
            "page": "" if self.page == 1 else str(self.page),
            "size": "" if self.page_size == 50 else str(self.page_size),
            "cols": "" if self.columns is None else ",".join(self.columns) or "-",
            "runs": ",".join(map(str, self.selected)),
            "version": "" if self.version is None else str(self.version),
        }
        return {k: v for k, v in params.items() if v}

    @classmethod
    def from_params(cls, params: dict[str, str]) -> TableState:
        """Lenient: a value a link cannot mean (a bad status, a non-number) is dropped."""
        try:
            value: float | None = float(params["value"]) if params.get("value") else None
        except ValueError:
            value = None
        size = int(params["size"]) if params.get("size", "").isdigit() else 50
        page = int(params["page"]) if params.get("page", "").isdigit() else 1
        cols = params.get("cols")
        return cls(
            statuses=[s for s in _split(params.get("status")) if s in RUN_STATUSES],
            dataset_ids=parse_ids(params.get("dataset")),
            models=_split(params.get("model")),
            tags=_split(params.get("tag")),
            name=params.get("q", ""),
            metric=params.get("metric") or None,
            op=params.get("op") if params.get("op") in OPS else "ge",
            value=value,
            archived=params.get("archived") == "1",
            sort=params.get("sort") or "created_at",
            descending=params.get("asc") != "1",
            page=max(1, page),
            page_size=size if size in PAGE_SIZES else 50,
            columns=None if cols is None else [c for c in _split(cols) if c != "-"],
            selected=list(dict.fromkeys(parse_ids(params.get("runs")))),
            version=int(params["version"]) if params.get("version", "").isdigit() else None,
        )

    def run_filter(self, project_id: int | None) -> RunFilter:
        thresholds = ()
        if self.metric and self.value is not None:
            thresholds = (MetricThreshold(self.metric, OPS[self.op], self.value),)  # type: ignore[arg-type]
        return RunFilter(
            project_id=project_id,
            statuses=tuple(self.statuses),
            dataset_ids=tuple(self.dataset_ids),
            models=tuple(self.models),
            tags=tuple(self.tags),
            name_contains=self.name,
            thresholds=thresholds,
            include_archived=self.archived,
            dataset_version=self.version if len(self.dataset_ids) == 1 else None,
        )


def default_columns(metric_keys: list[str]) -> list[str]:
    """The columns a plain view shows: each task's headline metrics that some run has
    (test accuracy, balanced accuracy, F1; test RMSE, MAE, R²), not the first metrics
    alphabetically (`best_epoch`, `epoch_seconds`, `lr`)."""
    have = set(metric_keys)
    wanted = [*headline_metrics("classification"), *headline_metrics("regression")]
    chosen = [k for k in dict.fromkeys(wanted) if k in have]
    if not chosen:  # no run has finished: its curves' losses say most
        chosen = [k for k in ("val_loss", "train_loss") if k in have]
    return [METRIC_PREFIX + k for k in chosen]


def column_label(column: str) -> str:
    """A column as the table and the Columns picker name it: a metric by its label, a
    setting by its config field."""
    if column.startswith(METRIC_PREFIX):
        return metric_label(column.removeprefix(METRIC_PREFIX))
    if column.startswith(PARAM_PREFIX):
        return f"{column.removeprefix(PARAM_PREFIX)} (setting)"
    return column.replace("_", " ")


# Scores that are shares of the test rows (0-1): shown as percentages.
_SHARE_WORDS = ("accuracy", "f1", "precision", "recall", "auc")


def number_format(column: str, values: pd.Series) -> str:
    """How a metric column prints (a Streamlit NumberColumn format): whole numbers as whole
    numbers (a best epoch is 7, not 7.0000), accuracy-like shares as percentages, others
    with four decimals (none once they reach the thousands)."""
    key = column.removeprefix(METRIC_PREFIX)
    present = pd.to_numeric(values, errors="coerce").dropna()
    finite = present[np.isfinite(present)]
    shares = direction(key) == "higher" and any(w in key.lower() for w in _SHARE_WORDS)
    if shares and len(finite) and finite.between(0, 1).all():
        return "percent"  # before whole numbers: a page of perfect scores is 100 %, not 1
    if len(finite) and (finite % 1 == 0).all():
        return "%d"
    if len(finite) and finite.abs().max() >= 1000:
        return "%.0f"
    return "%.4f"


def model_text(config: dict[str, Any], dataset_kind: str | None = None) -> str:
    return model_summary(config, dataset_kind)


def _as_stored(value: Any) -> Any:  # noqa: ANN401
    return value


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def table_frame(
    runs: list[RunRecord],
    columns: list[str],
    kinds: dict[int, str] | None = None,
    *,
    shown: bool = True,
) -> pd.DataFrame:
    """One row per run: fixed facts, then the chosen `param:`/`metric:` columns. `kinds`
    (dataset id → tabular/image/text) names the model family that trained.

    shown: names, tags and notes as the page shows them (display_text: no bidi control can
    reorder a cell); False keeps them as stored, for the CSV export.
    """
    kinds = kinds or {}
    text = display_text if shown else _as_stored
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "id": run.id,
            "name": text(run.name),
            "status": run.status,
            "verdict": short_verdict(run.status, run.verdict),
            "dataset": text(run.dataset_name),
            "model": model_text(run.config, kinds.get(run.dataset_id)),
            "tags": [text(t) for t in run.tags],
        }
        for col in columns:
            if col.startswith(METRIC_PREFIX):
                row[col] = run.last(col.removeprefix(METRIC_PREFIX))
            elif col.startswith(PARAM_PREFIX):
                row[col] = _cell(run.config.get(col.removeprefix(PARAM_PREFIX)))
        row["note"] = text(run.notes)
        row["created"] = run.created_at
        row["duration_s"] = run.duration_s
        row["archived"] = run.archived
        rows.append(row)
    fixed = ["id", "name", "status", "verdict", "dataset", "model", "tags"]
    return pd.DataFrame(
        rows, columns=[*fixed, *columns, "note", "created", "duration_s", "archived"]
    )


def export_csv(db: Engine, state: TableState, project_id: int | None) -> str:
    """Every run the filters match (not just the page), with all params and summary metrics."""
    runs = run_query.query_runs(
        db,
        state.run_filter(project_id),
        sort=state.sort,
        descending=state.descending,
        limit=EXPORT_LIMIT,
    )
    params = sorted({k for r in runs for k in r.config})
    keys = sorted({k for r in runs for k in r.summary})
    columns = [PARAM_PREFIX + p for p in params] + [METRIC_PREFIX + k for k in keys]
    kinds = {d.id: d.kind for d in dataset_store.list_datasets(db)}
    frame = table_frame(runs, columns, kinds, shown=False)
    frame["tags"] = frame["tags"].map(lambda tags: ";".join(tags))
    return to_safe_csv(frame, index=False)  # names, tags and notes are user text
