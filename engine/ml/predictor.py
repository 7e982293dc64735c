"""A trained model as something that takes raw inputs and gives predictions.

One loader for everything that uses a finished run's `model.pt` outside training: the
Playground, batch prediction, exports, compression and explanations. It reads the checkpoint
with `weights_only=True` (opening it never runs code), rebuilds the model from the stored config,
and turns raw inputs into the model's tensors with the preprocessing that was fitted at training:

- tables: a DataFrame with the feature columns (extra columns are ignored);
- text: a sequence of strings;
- images: a sequence of PIL images (any mode or size; they are converted as in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.ml.inputs import InputSpec
from engine.ml.models.build import build_model
from engine.ml.prep.images import ImagePreprocessor
from engine.ml.prep.pretrained_text import KIND as PRETRAINED_TEXT
from engine.ml.prep.pretrained_text import PretrainedTextPreprocessor
from engine.ml.prep.tabular import TabularPreprocessor, TargetEncoder
from engine.ml.prep.text import TextPreprocessor

BATCH = 512


class PredictorError(ValueError):
    """An input the model cannot take, or a file that is not a Seedlab model; says what to do."""


@dataclass
class Predictor:
    model: nn.Module
    config: RunConfig
    spec: InputSpec
    task: str  # "classification" | "regression"
    preprocessor: (
        TabularPreprocessor | TextPreprocessor | PretrainedTextPreprocessor | ImagePreprocessor
    )
    target: TargetEncoder
    target_column: str
    model_family: str
    feature_names: list[str] = field(default_factory=list)  # encoded features (tables)
    payload: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def classes(self) -> list[str]:
        return list(self.target.classes) if self.task == "classification" else []

    @property
    def input_columns(self) -> list[str]:
        """The raw columns a table model needs (numeric first, then categorical, then dates)."""
        if not isinstance(self.preprocessor, TabularPreprocessor):
            return []
        return self.preprocessor.input_columns

    @classmethod
    def load(cls, path: Path | str) -> Predictor:
        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise PredictorError(
                f"No model file at {path}: the run has not completed or its files were deleted."
            ) from None
        except Exception as exc:  # pickle refusals, truncated files
            # Not torch's text: for a refused pickle it advises loading with weights_only=False,
            # which would run whatever a replaced file carries.
            raise PredictorError(
                f"{path} is not a valid Seedlab model ({type(exc).__name__} while reading it): "
                "it is damaged or was replaced by another file, and was not loaded. Train the run "
                "again (clone it) to get a model file."
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != "seedlab-v2":
            raise PredictorError(
                f"{path} is not a Seedlab model checkpoint (format seedlab-v2); "
                "retrain the run with this version of Seedlab."
            )
        return cls.from_payload(payload)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Predictor:
        config = RunConfig.model_validate(payload["config"])
        spec = InputSpec.from_dict(payload["input"])
        model = build_model(config, spec, int(payload["n_outputs"]))
        model.load_state_dict(payload["model_state"])
        model.eval()
        pre_dict = payload["preprocessor"]
        if spec.kind == "tabular":
            preprocessor: Any = TabularPreprocessor.from_dict(pre_dict)
        elif spec.kind == "text" and pre_dict.get("kind") == PRETRAINED_TEXT:
            # A pretrained encoder's own tokenizer (engine/ml/prep/pretrained_text.py).
            preprocessor = PretrainedTextPreprocessor.from_dict(pre_dict)
        elif spec.kind == "text":
            preprocessor = TextPreprocessor.from_dict(pre_dict)
        elif spec.kind == "image":
            preprocessor = ImagePreprocessor.from_dict(pre_dict)
        else:
            raise PredictorError(f"Unknown input kind {spec.kind!r} in the checkpoint.")
        return cls(
            model=model,
            config=config,
            spec=spec,
            task=payload["task"],
            preprocessor=preprocessor,
            target=TargetEncoder(**payload["target"]),
            target_column=payload.get("target_column", "target"),
            model_family=payload.get("model_family", config.model),
            feature_names=list(payload.get("feature_names", [])),
            payload=payload,
        )

    # --- raw inputs → tensors ---------------------------------------------------------
    def encode(self, inputs: Any) -> torch.Tensor:
        """Raw inputs as the model's input tensor (float32 features, int64 token ids)."""
        if self.kind == "tabular":
            return self._encode_table(inputs)
        if self.kind == "text":
            return self._encode_text(inputs)
        return self._encode_images(inputs)

    def _encode_table(self, frame: Any) -> torch.Tensor:
        if not isinstance(frame, pd.DataFrame):
            raise PredictorError("A table model takes a table (DataFrame) of feature columns.")
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise PredictorError(
                f"The input has no column(s) {missing}, which the model needs. "
                f"Expected columns: {self.input_columns}."
            )
        try:
            return torch.from_numpy(self.preprocessor.transform(frame))  # type: ignore[arg-type]
        except DatasetError as exc:
            raise PredictorError(str(exc)) from None

    def _encode_text(self, texts: Any) -> torch.Tensor:
        pre = self.preprocessor
        assert isinstance(pre, TextPreprocessor | PretrainedTextPreprocessor)
        if isinstance(texts, pd.DataFrame):
            if pre.text_column not in texts.columns:
                raise PredictorError(
                    f"The input has no text column {pre.text_column!r}, which the model reads."
                )
            texts = texts[pre.text_column].tolist()
        elif isinstance(texts, str):
            texts = [texts]
        return torch.from_numpy(pre.transform(list(texts))).long()

    def _encode_images(self, images: Any) -> torch.Tensor:
        pre = self.preprocessor
        assert isinstance(pre, ImagePreprocessor)
        if isinstance(images, Image.Image):
            images = [images]
        tensors = []
        for i, image in enumerate(images):
            if not isinstance(image, Image.Image):
                raise PredictorError(f"Input {i} is not an image (PNG, JPEG, …).")
            tensors.append(pre.to_tensor(image))
        if not tensors:
            return torch.empty((0, *self.spec.shape))
        return torch.stack(tensors)

    # --- tensors → outputs ----------------------------------------------------------
    @torch.no_grad()
    def outputs(self, x: torch.Tensor) -> np.ndarray:
        """Class probabilities (N, C) for classification, target values (N,) for regression."""
        self.model.eval()
        parts = [self.model(x[i : i + BATCH]).float() for i in range(0, len(x), BATCH)]
        out = torch.cat(parts) if parts else torch.empty((0, max(1, len(self.classes))))
        if self.task == "classification":
            return torch.softmax(out, dim=1).numpy().astype(np.float64)
        return self.target.decode_regression(out.view(-1).numpy().astype(np.float64))

    def predict(self, inputs: Any) -> pd.DataFrame:
        """One row per input: `prediction`, plus `p(<class>)` columns for classification."""
        values = self.outputs(self.encode(inputs))
        if self.task == "classification":
            frame = pd.DataFrame(values, columns=[f"p({c})" for c in self.classes])
            frame.insert(0, "prediction", [self.classes[i] for i in values.argmax(axis=1)])
            return frame
        return pd.DataFrame({"prediction": values})

    def example_input(self, n: int = 2) -> torch.Tensor:
        """A valid dummy input batch (for tracing exports and timing)."""
        if self.kind == "text":
            return torch.ones((n, *self.spec.shape), dtype=torch.long)
        return torch.zeros((n, *self.spec.shape), dtype=torch.float32)


def predict_frame(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """The input table with the prediction columns appended (batch prediction of a CSV)."""
    inputs: Sequence[Any] | pd.DataFrame = frame
    result = predictor.predict(inputs)
    result.index = frame.index
    clashing = [c for c in result.columns if c in frame.columns]
    result = result.rename(columns={c: f"{c}_predicted" for c in clashing})
    return pd.concat([frame, result], axis=1)
