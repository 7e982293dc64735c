"""A trained model as portable files: TorchScript, torch.export's .pt2 and ONNX (checked against
PyTorch). Used by exports (engine/deploy/export.py) and the predictor bundle
(engine/deploy/bundle.py)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.errors import SeedlabError
from engine.ml.predictor import Predictor

# Recurrent text models read packed sequences (each text stops at its real end); the graph
# exporters cannot trace packing, TorchScript tracing can.
NOT_TRACEABLE_BY_EXPORT = {"lstm", "gru"}
# Test rows per ONNX check batch.
CHECK_BATCH = 256


class ExportError(SeedlabError):
    """A model that cannot be written in the asked format; says which family and what works."""


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
