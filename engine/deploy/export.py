"""A completed run's model out of the lab: TorchScript, ONNX, torch.export (.pt2) and a
self-contained predictor bundle (engine/deploy/bundle.py).

Every ONNX file is checked with onnxruntime against PyTorch on the run's test split before it is
handed out: one whose outputs differ by more than ONNX_TOLERANCE is refused; the largest absolute
difference is returned and stored in the run's exports.json.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import Engine

from db.writes import artifacts as artifact_writes
from engine.core.atomic import atomic_path, write_json_atomic
from engine.core.settings import Settings
from engine.deploy.bundle import write_bundle
from engine.deploy.finished_run import load_finished_run
from engine.deploy.model_files import (
    ExportError,
    onnx_max_abs_diff,
    write_onnx,
    write_pt2,
    write_torchscript,
)
from engine.ml.pipeline import file_digest

FORMATS = ("torchscript", "onnx", "pt2", "bundle")
FILE_NAMES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx", "pt2": "model.pt2"}
ONNX_TOLERANCE = 1e-4

log = logging.getLogger("seedlab.export")


@dataclass
class ExportResult:
    run_id: int
    format: str
    path: str
    size_bytes: int
    # ONNX only: largest |onnxruntime - torch| over the test split's model outputs.
    max_abs_diff: float | None = None
    checked_rows: int = 0
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exports_dir(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "exports"


def exports_record_path(settings: Settings, run_id: int) -> Path:
    return exports_dir(settings, run_id) / "exports.json"


def read_exports(settings: Settings, run_id: int) -> dict[str, dict[str, Any]]:
    """The last export of each format ({format: ExportResult dict}), {} when none."""
    try:
        data = json.loads(exports_record_path(settings, run_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def check_onnx(
    path: Path,
    model: torch.nn.Module,
    x: Any,  # noqa: ANN401
    tolerance: float = ONNX_TOLERANCE,
) -> float:
    """The ONNX file's largest difference from PyTorch over x; raises ExportError when it is
    over `tolerance` (an ONNX file that predicts differently must not be handed out)."""
    worst = onnx_max_abs_diff(path, model, x)
    if not worst <= tolerance:  # also a NaN difference
        raise ExportError(
            f"The ONNX file's outputs differ from PyTorch's by up to {worst:.2e} on the test "
            f"split, more than the {tolerance:.0e} allowed; export as torchscript or bundle."
        )
    return worst


def export_run(
    settings: Settings, db: Engine, run_id: int, fmt: str, output: Path | None = None
) -> ExportResult:
    """Write run `run_id`'s model as `fmt` into `output` (default: the run's exports folder).

    The result (with the ONNX check) is also kept in the run's exports.json, and a file inside
    the run's folder is registered as an artifact, so the Artifacts tab lists it.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    finished = load_finished_run(settings, db, run_id)
    predictor = finished.predictor
    folder = Path(output) if output is not None else exports_dir(settings, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    result = ExportResult(run_id=run_id, format=fmt, path="", size_bytes=0, created_at=time.time())
    try:
        if fmt == "bundle":
            path = write_bundle(
                predictor, finished.data, folder / f"run-{run_id}-bundle.zip", settings.home
            )
        else:
            path = folder / FILE_NAMES[fmt]
            # A file that fails its check is never handed out: it replaces `path` only after.
            with atomic_path(path) as tmp:
                {"torchscript": write_torchscript, "onnx": write_onnx, "pt2": write_pt2}[fmt](
                    predictor, tmp
                )
                if fmt == "onnx":
                    x_test = finished.data.x_test
                    result.max_abs_diff = check_onnx(tmp, predictor.model, x_test)
                    result.checked_rows = len(x_test)
    except ExportError:
        raise
    except Exception as exc:  # an exporter's internal failure: say which model, keep the log
        log.exception("export of run %s as %s failed", run_id, fmt)
        raise ExportError(
            f"Exporting the {predictor.model_family} model of run #{run_id} as {fmt} failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from None
    size, digest = file_digest(path)
    result.path, result.size_bytes = str(path), size
    _remember(settings, db, result, digest)
    return result


def _remember(settings: Settings, db: Engine, result: ExportResult, digest: str) -> None:
    record = read_exports(settings, result.run_id)
    record[result.format] = result.to_dict()
    write_json_atomic(exports_record_path(settings, result.run_id), record)
    path = Path(result.path)
    run_dir = settings.run_dir(result.run_id).resolve()
    if not path.resolve().is_relative_to(run_dir):
        return  # a copy written where the user asked: not one of the run's files
    artifact_writes.add_artifact(
        db,
        result.run_id,
        kind=result.format,
        path=str(path.resolve().relative_to(run_dir)),
        size_bytes=result.size_bytes,
        sha256=digest,
    )
