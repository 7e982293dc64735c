"""A stored run's HTML report: what the run has so far, read from the database and its files,
rendered by engine/report/html_report.py (pure). The CLI (`seedlab runs report`) and the Run
page's download both come here."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from db import datasets as dataset_store
from db import metrics as metric_store
from db import runs as run_store
from engine.core import catalog
from engine.core.atomic import write_text_atomic
from engine.core.catalog import EPOCH_METRICS
from engine.core.epochs import EPOCH_KEY
from engine.core.errors import SeedlabError
from engine.core.run_files import read_report
from engine.core.settings import Settings
from engine.report.html_report import build_run_report


def run_report_html(settings: Settings, db: Engine, run_id: int) -> str:
    """The report of a stored run (any status: what it has so far)."""
    run = run_store.get_run(db, run_id)
    if run is None:
        raise SeedlabError(f"No run {run_id}.")
    dataset = dataset_store.get_dataset(db, run.dataset_id)
    task = catalog.effective_task(
        run.config.get("task", "auto"), dataset.task if dataset else "classification"
    )
    # Curves are thinned per trace in charts.metric_curves, as on the Run page.
    keys = [*EPOCH_METRICS.get(task, []), EPOCH_KEY]  # the epoch series: the x axis
    history = metric_store.metric_history(db, [run_id], keys=keys)
    return build_run_report(run, history, read_report(settings, run_id), task=task)


def write_run_report(settings: Settings, db: Engine, run_id: int, output: Path) -> int:
    """Write the report to `output` (atomically); returns its size in bytes."""
    html = run_report_html(settings, db, run_id)
    write_text_atomic(output, html)
    return output.stat().st_size
