"""Export, compression and feature importance of a completed run, checked and audited here.

Two ways in, one permission check and one audit row each:
- `request_export` / `request_compression` / `request_importance` (the dashboard): check, audit,
  and queue a job (table `jobs`) that the engine's worker runs in a child process
  (engine/execution/job_runner.py). The web process never waits on a child process.
- `export_run` / `compress_run` / `compute_importance` (the CLI): check, run in-process, then
  audit — in engine/services/job_work.py, with `perform`, the work itself, which the job runner
  shares. This module reaches no torch, not even inside functions (.importlinter): the dashboard
  imports it, and only the engine does the work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db import jobs as job_store
from db import runs as run_store
from db.writes import jobs as job_writes
from engine.core.config import parse_overrides
from engine.core.errors import ConfigError, SeedlabError
from engine.core.settings import Settings
from engine.deploy.variants import METHODS
from engine.services import audit
from engine.services.permissions import Actor, Permission, check
from engine.services.runs import check_run

# engine.deploy.export.FORMATS (that module loads torch; a test keeps the two equal).
EXPORT_FORMATS = ("torchscript", "onnx", "pt2", "bundle")
FORMAT_LABELS = {"torchscript": "TorchScript", "onnx": "ONNX", "pt2": ".pt2", "bundle": "bundle"}
# "measure": measure the distilled students that finished since they were queued.
COMPRESS_METHODS = (*METHODS, "measure")
# Permutation importance defaults (the same as `seedlab runs importance`).
IMPORTANCE_ROWS = 5000
IMPORTANCE_REPEATS = 10

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
    job_id = job_writes.enqueue(
        db, kind=kind, run_id=run_id, params=params, requested_by=actor.name
    )
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


def export_message(result: dict[str, Any]) -> str:
    """What `seedlab runs export` prints, and what the page shows when the job completed."""
    text = f"wrote {result['path']} ({result['size_bytes']:,} bytes)"
    if result.get("max_abs_diff") is not None:
        text += (
            f"\nonnxruntime vs PyTorch on {result['checked_rows']:,} test rows: "
            f"max abs difference {result['max_abs_diff']:.2e}"
        )
    return text
