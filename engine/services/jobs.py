"""Export, compression and feature importance of a completed run, checked and audited here.

Two ways in, one permission check and one audit row each:
- `request_export` / `request_compression` / `request_importance` (the dashboard): check, audit,
  and queue a job (table `jobs`) that the engine's worker runs in a child process
  (engine/execution/job_runner.py). The web process never waits on a child process.
- `export_run` / `compress_run` / `compute_importance` (the CLI): check, run here, in-process,
  then audit.

`perform` is the work itself, shared by the job runner and the in-process functions. This module
imports no torch at load time: the dashboard imports it, and only the engine does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from db import audit
from db import jobs as job_store
from db import runs as run_store
from engine.core.config import parse_overrides
from engine.core.errors import ConfigError, SeedlabError
from engine.core.settings import Settings
from engine.deploy.variants import METHODS
from engine.services.actions import check_run
from engine.services.permissions import Actor, Permission, check

if TYPE_CHECKING:
    from engine.deploy.export import ExportResult

# engine.deploy.export.FORMATS (that module loads torch; a test keeps the two equal).
EXPORT_FORMATS = ("torchscript", "onnx", "pt2", "bundle")
FORMAT_LABELS = {"torchscript": "TorchScript", "onnx": "ONNX", "pt2": ".pt2", "bundle": "bundle"}
# "measure": measure the distilled students that finished since they were queued.
COMPRESS_METHODS = (*METHODS, "measure")
# Permutation importance defaults (the same as `seedlab runs importance`).
IMPORTANCE_ROWS = 5000
IMPORTANCE_REPEATS = 10

Progress = Callable[[str, float | None], None]


def _no_progress(_text: str, _fraction: float | None = None) -> None:
    pass


# ---------------------------------------------------------------- what each job asks for


def export_params(fmt: str) -> dict[str, Any]:
    fmt = fmt.strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    return {"format": fmt}


def compression_params(
    method: str,
    *,
    sparsity: float = 0.5,
    epochs: int = 2,
    overrides: list[str] | dict[str, Any] | None = None,
) -> dict[str, Any]:
    method = method.strip().lower()
    if method not in COMPRESS_METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    params: dict[str, Any] = {"method": method}
    if method == "prune":
        params.update(sparsity=float(sparsity), epochs=int(epochs))
    elif method == "distill":
        values = overrides if isinstance(overrides, dict) else parse_overrides(overrides or [])
        params["overrides"] = dict(values)
    return params


def importance_params(
    max_rows: int = IMPORTANCE_ROWS, max_repeats: int = IMPORTANCE_REPEATS
) -> dict[str, Any]:
    return {"max_rows": int(max_rows), "max_repeats": int(max_repeats)}


def _check(db: Engine, actor: Actor, run_id: int, kind: str, params: dict[str, Any]) -> None:
    check_run(db, actor, Permission.EXPORT, run_id)
    if kind == "compress" and params["method"] == "distill":
        # A distilled student is a new run: launching it needs that right too.
        check(actor, Permission.LAUNCH)


def _audit_detail(kind: str, params: dict[str, Any]) -> tuple[str, str]:
    """(action, detail) of the audit row; the same rows the pages wrote before jobs existed."""
    if kind == "export":
        return "export", params["format"]
    if kind == "compress":
        return "compress", params["method"]
    return "importance", ""


# ---------------------------------------------------------------- the dashboard: queue a job


def _request(db: Engine, actor: Actor, run_id: int, kind: str, params: dict[str, Any]) -> int:
    _check(db, actor, run_id, kind, params)
    run = run_store.get_run(db, run_id)
    if run is not None and run.status != "completed":
        raise SeedlabError(
            f"Run #{run_id} is {run.status}; export, compression and importance work on a "
            "completed run's final model."
        )
    # A second click while the first is still waiting or running gets the same job.
    existing = job_store.find_active(db, kind=kind, run_id=run_id, params=params)
    if existing is not None:
        return existing.id
    job_id = job_store.enqueue(db, kind=kind, run_id=run_id, params=params, requested_by=actor.name)
    action, detail = _audit_detail(kind, params)
    audit.record(db, actor.name, action, f"run {run_id}", f"{detail} (job {job_id})".lstrip())
    return job_id


def request_export(settings: Settings, db: Engine, actor: Actor, run_id: int, fmt: str) -> int:
    """Queue an export of run `run_id`'s model as `fmt`; returns the job's id."""
    return _request(db, actor, run_id, "export", export_params(fmt))


def request_compression(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    method: str,
    *,
    sparsity: float = 0.5,
    epochs: int = 2,
    overrides: list[str] | dict[str, Any] | None = None,
) -> int:
    """Queue a compression (quantize, prune, distill, or measure finished students)."""
    params = compression_params(method, sparsity=sparsity, epochs=epochs, overrides=overrides)
    return _request(db, actor, run_id, "compress", params)


def request_importance(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    *,
    max_rows: int = IMPORTANCE_ROWS,
    max_repeats: int = IMPORTANCE_REPEATS,
) -> int:
    """Queue permutation importance for a completed table run (stored in its report.json)."""
    return _request(db, actor, run_id, "importance", importance_params(max_rows, max_repeats))


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
    audit.record(db, actor.name, "export", f"run {run_id}", detail)
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
    audit.record(db, actor.name, "compress", f"run {run_id}", params["method"])
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
    audit.record(db, actor.name, "importance", f"run {run_id}")
    return result


# ---------------------------------------------------------------- the work itself


def export_message(result: dict[str, Any]) -> str:
    """What `seedlab runs export` prints, and what the page shows when the job completed."""
    text = f"wrote {result['path']} ({result['size_bytes']:,} bytes)"
    if result.get("max_abs_diff") is not None:
        text += (
            f"\nonnxruntime vs PyTorch on {result['checked_rows']:,} test rows: "
            f"max abs difference {result['max_abs_diff']:.2e}"
        )
    return text


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
        row = compress.distill_run(settings, db, run_id, dict(params.get("overrides") or {}))
        message = (
            f"queued student run #{row['run_id']}; the engine trains it "
            f"(`seedlab runs wait {row['run_id']}`), then `seedlab runs variants {run_id}`."
        )
    else:
        progress("Measuring the finished students…", None)
        message = "Measured: the students are in the table below."
    record = compress.refresh_students(settings, db, run_id)
    return {"variant": row, "record": record, "message": message}
