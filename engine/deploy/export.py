"""A completed run's model out of the lab: TorchScript, ONNX, torch.export (.pt2) and a
self-contained predictor bundle (engine/deploy/bundle.py).

Every ONNX file is checked with onnxruntime against PyTorch on the run's test split before it is
handed out: one whose outputs differ by more than ONNX_TOLERANCE is refused; the largest absolute
difference is returned and stored in the run's exports.json.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import Engine

from db import artifacts as artifact_store
from engine.core.atomic import atomic_path, write_json_atomic
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.deploy.finished_run import load_finished_run
from engine.ml.pipeline import file_digest
from engine.ml.predictor import Predictor

FORMATS = ("torchscript", "onnx", "pt2", "bundle")
FILE_NAMES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx", "pt2": "model.pt2"}
# Recurrent text models read packed sequences (each text stops at its real end); the graph
# exporters cannot trace packing, TorchScript tracing can.
NOT_TRACEABLE_BY_EXPORT = {"lstm", "gru"}
CHECK_BATCH = 256
ONNX_TOLERANCE = 1e-4

log = logging.getLogger("seedlab.export")


class ExportError(SeedlabError):
    """A model that cannot be written in the asked format; says which family and what works."""


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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress and deprecation notes; a user gets our one-line result."""
    noisy = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [lg.level for lg in noisy]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in noisy:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(noisy, levels, strict=True):
                lg.setLevel(level)


def _refuse_untraceable(predictor: Predictor, fmt: str) -> None:
    if predictor.model_family in NOT_TRACEABLE_BY_EXPORT:
        raise ExportError(
            f"A {predictor.model_family.upper()} text model cannot be exported to {fmt}: it reads "
            "packed sequences, which the graph exporter cannot trace. Use --format torchscript "
            "or --format bundle, or train a textcnn, embedding_bag or transformer model."
        )


def write_torchscript(predictor: Predictor, path: Path) -> Path:
    """A traced TorchScript module (torch.jit is deprecated upstream but still widely loaded)."""
    example = predictor.example_input(2)
    with _quiet(), torch.no_grad():
        # check_trace compares two traces, which differ for the Transformer's fused attention
        # path; the outputs are compared below instead.
        traced = torch.jit.trace(predictor.model.eval(), example, check_trace=False)
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path))
        batch = predictor.example_input(5)
        if not torch.allclose(loaded(batch), predictor.model(batch), atol=1e-5):
            raise ExportError("The TorchScript trace gives different outputs from the model.")
    return path


def _exported_program(predictor: Predictor) -> torch.export.ExportedProgram:
    example = predictor.example_input(2)
    batch = torch.export.Dim("batch")
    return torch.export.export(predictor.model.eval(), (example,), dynamic_shapes=({0: batch},))


def write_pt2(predictor: Predictor, path: Path) -> Path:
    """torch.export's format: loads with `torch.export.load(path).module()`, no Seedlab code."""
    _refuse_untraceable(predictor, "pt2")
    with _quiet():
        torch.export.save(_exported_program(predictor), str(path))
    return path


def write_onnx(predictor: Predictor, path: Path) -> Path:
    """ONNX with a dynamic batch dimension and the weights inside the one file."""
    _refuse_untraceable(predictor, "onnx")
    example = predictor.example_input(2)
    with _quiet():
        torch.onnx.export(
            predictor.model.eval(),
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: "batch"},),
            external_data=False,
            dynamo=True,
        )
    return path


def _in_order(x: Any) -> Iterator[torch.Tensor]:  # noqa: ANN401
    """Batches of a test split: a tensor, or a stream of a large image set (engine/ml/train.py)."""
    if isinstance(x, torch.Tensor):
        return (x[i : i + CHECK_BATCH] for i in range(0, len(x), CHECK_BATCH))
    return iter(x.in_order())


def onnx_max_abs_diff(path: Path, model: torch.nn.Module, x: Any) -> float:  # noqa: ANN401
    """Largest |onnxruntime - torch| of the raw model outputs over all rows of x."""
    import onnxruntime  # imported here: only ONNX checks need it

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    model.eval()
    with torch.no_grad():
        for batch in _in_order(x):
            batch = batch.cpu()
            ours = model(batch).float().numpy()
            theirs = session.run(None, {name: batch.numpy()})[0]
            worst = max(worst, float(np.abs(theirs - ours).max()) if ours.size else 0.0)
    return worst


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
            from engine.deploy.bundle import write_bundle  # it builds on this module's writers

            path = write_bundle(predictor, finished.data, folder / f"run-{run_id}-bundle.zip")
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
    artifact_store.add_artifact(
        db,
        result.run_id,
        kind=result.format,
        path=str(path.resolve().relative_to(run_dir)),
        size_bytes=result.size_bytes,
        sha256=digest,
    )
