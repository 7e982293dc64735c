"""The work of export, compression and importance jobs (`perform`), and the CLI's in-process
versions of them (checked and audited like the page's requests in engine/services/jobs.py).
The engine's job runner (engine/execution/job_runner.py) and `seedlab runs export|compress|
importance` come here; the dashboard never does (it only queues jobs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.core.errors import ConfigError
from engine.core.settings import Settings
from engine.deploy.export import ExportResult
from engine.deploy.variants import METHODS
from engine.services import audit
from engine.services.jobs import (
    FORMAT_LABELS,
    IMPORTANCE_REPEATS,
    IMPORTANCE_ROWS,
    _check,
    compression_params,
    export_message,
    export_params,
)
from engine.services.permissions import Actor, Permission
from engine.services.runs import check_run

Progress = Callable[[str, float | None], None]


def _no_progress(_text: str, _fraction: float | None = None) -> None:
    pass


# ---------------------------------------------------------------- the CLI: in-process


def export_run(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    fmt: str,
    output: Path | None = None,
) -> ExportResult:
    """`seedlab runs export`: write the model as `fmt` now (into `output`, or the run's exports)."""
    from engine.deploy.export import export_run as write_export

    params = export_params(fmt)
    _check(db, actor, run_id, "export", params)
    result = write_export(settings, db, run_id, params["format"], output)
    detail = params["format"] + (f" to {output}" if output is not None else "")
    audit.record(db, actor, "export", f"run {run_id}", detail)
    return result


def compress_run(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    method: str,
    *,
    sparsity: float = 0.5,
    epochs: int = 2,
    overrides: list[str] | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`seedlab runs compress`: make the variant now; returns {"variant": row, **variants.json}."""
    params = compression_params(method, sparsity=sparsity, epochs=epochs, overrides=overrides)
    if params["method"] == "measure":
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got 'measure'")
    _check(db, actor, run_id, "compress", params)
    result = perform(settings, db, "compress", run_id, params)
    audit.record(db, actor, "compress", f"run {run_id}", params["method"])
    return {"variant": result["variant"], **result["record"]}


def compute_importance(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    *,
    max_rows: int = IMPORTANCE_ROWS,
    max_repeats: int = IMPORTANCE_REPEATS,
) -> dict[str, Any]:
    """`seedlab runs importance`: compute it now and store it in the run's report.json."""
    from engine.deploy.run_importance import importance_for_run

    check_run(db, actor, Permission.EXPORT, run_id)
    result = importance_for_run(settings, db, run_id, max_rows=max_rows, max_repeats=max_repeats)
    audit.record(db, actor, "importance", f"run {run_id}")
    return result


def perform(
    settings: Settings,
    db: Engine,
    kind: str,
    run_id: int,
    params: dict[str, Any],
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Do one job's work in this process (no check, no audit: the caller did both); returns
    its result, a JSON object with a "message" for the page. Raises SeedlabError with what to
    do when the run cannot be exported or compressed."""
    if kind == "export":
        from engine.deploy.export import export_run as write_export

        fmt = params["format"]
        checked = " and checking it with onnxruntime" if fmt == "onnx" else ""
        progress(f"Exporting as {FORMAT_LABELS.get(fmt, fmt)}{checked}…", None)
        result = write_export(settings, db, run_id, fmt).to_dict()
        return {**result, "message": export_message(result)}
    if kind == "compress":
        return _compress(settings, db, run_id, params, progress)
    if kind == "importance":
        from engine.deploy.run_importance import importance_for_run

        progress("Shuffling each column of the test rows and scoring the model…", None)
        importance = importance_for_run(
            settings,
            db,
            run_id,
            max_rows=int(params.get("max_rows", IMPORTANCE_ROWS)),
            max_repeats=int(params.get("max_repeats", IMPORTANCE_REPEATS)),
        )
        return {
            "importance": importance,
            "message": "Feature importance computed: it is on the Evaluation tab.",
        }
    raise ConfigError(f"Unknown job kind {kind!r}: export, compress or importance.")


def _compress(
    settings: Settings, db: Engine, run_id: int, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    from engine.deploy import compress
    from engine.services.distillation import distill_run

    method = params["method"]
    row: dict[str, Any] | None = None
    if method == "quantize":
        progress("Quantizing to int8 and measuring…", None)
        row = compress.quantize_run(settings, db, run_id)
        message = "Done: the variant is in the table below."
    elif method == "prune":
        sparsity, epochs = float(params["sparsity"]), int(params["epochs"])
        progress(f"Pruning to {sparsity:.0%}, fine-tuning {epochs} epochs, measuring…", None)
        row = compress.prune_run(settings, db, run_id, target=sparsity, epochs=epochs)
        message = "Done: the variant is in the table below."
    elif method == "distill":
        progress("Queueing the student run…", None)
        row = distill_run(settings, db, run_id, dict(params.get("overrides") or {}))
        message = (
            f"queued student run #{row['run_id']}; the engine trains it "
            f"(`seedlab runs wait {row['run_id']}`), then `seedlab runs variants {run_id}`."
        )
    else:
        progress("Measuring the finished students…", None)
        message = "Measured: the students are in the table below."
    record = compress.refresh_students(settings, db, run_id)
    return {"variant": row, "record": record, "message": message}
