"""A stored text dataset → the pretrained encoder's token ids, and (frozen encoder) its pooled
features, computed once per run.

With `encoder_mode=frozen` nothing the encoder computes changes during training, so the
training and validation texts are encoded once, the first time an epoch asks for them
(`FrozenFeatures`), and every epoch then trains only the head on those features. The test split
stays as token ids: evaluation, exports and the Playground run the whole model on text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd
import torch

from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.ml.device import DeviceChoice
from engine.ml.inputs import InputSpec
from engine.ml.prep.pretrained_text import PretrainedTextPreprocessor
from engine.ml.prep.tabular import TargetEncoder
from engine.ml.prepared import PreparedData, split_for_run, text_prepared
from engine.ml.pretrained_source import resolve_base_model
from engine.ml.train import TrainData

log = logging.getLogger("seedlab.pretrained")

# Texts per encoder pass when caching frozen features (STACK-NOTES: 64 suits 2 CPU cores).
FEATURE_BATCH = 64


class FeatureExtractor:
    """The frozen encoder, loaded on first use, turning token ids into pooled features."""

    def __init__(self, config: RunConfig, spec: InputSpec, device: torch.device) -> None:
        self.config, self.spec, self.device = config, spec, device
        self._model: Any = None

    @torch.inference_mode()
    def features(self, ids: torch.Tensor) -> torch.Tensor:
        if self._model is None:
            from engine.ml.models.pretrained import build_pretrained

            # The same builder and weights as the trained model, so its frozen encoder gives
            # exactly these features when it later reads the ids itself.
            self._model = build_pretrained(self.config, self.spec, 1).to(self.device).eval()
        parts = [
            self._model.encode(ids[i : i + FEATURE_BATCH]).float()
            for i in range(0, len(ids), FEATURE_BATCH)
        ]
        hidden = int(self.spec.encoder["hidden_size"])  # type: ignore[index]
        return torch.cat(parts) if parts else torch.empty((0, hidden), device=self.device)


class FrozenFeatures:
    """A split's pooled encoder features, computed on first use; read batch by batch as the
    training loop reads a stream (engine/ml/train.py BatchStream)."""

    def __init__(self, ids: torch.Tensor, extractor: FeatureExtractor) -> None:
        self.ids = ids
        self.extractor = extractor
        self._features: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def features(self) -> torch.Tensor:
        if self._features is None:
            self._features = self.extractor.features(self.ids)
        return self._features

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
        features = self.features
        for start in range(0, len(order), batch_size):
            yield features[order[start : start + batch_size].to(features.device)]

    def in_order(self) -> Iterator[torch.Tensor]:
        features = self.features
        for start in range(0, len(features), 4096):
            yield features[start : start + 4096]


def _max_length(config: RunConfig, hf_config: Any, tokenizer: Any) -> int:  # noqa: ANN401
    """config.max_length, within what the encoder's position table holds."""
    limits = [config.max_length]
    positions = getattr(hf_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        # RoBERTa-style models reserve the first positions for padding.
        offset = 2 if getattr(hf_config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        limits.append(positions - offset)
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 100_000:
        limits.append(model_max)
    return max(2, min(limits))


def prepare_pretrained_text(
    settings: Settings,
    frame: pd.DataFrame,
    schema: dict[str, Any],
    config: RunConfig,
    choice: DeviceChoice,
) -> PreparedData:
    """Split by seed, tokenise with the base model's tokenizer, ids (and for a frozen encoder,
    lazily, pooled features) on the device."""
    from transformers import AutoConfig, AutoTokenizer

    target_col, text_col = schema["target"], schema.get("text_column")
    for column in (target_col, text_col):
        if column is None or column not in frame.columns:
            raise DatasetError(
                f"The column {column!r} is missing from the dataset's data file; upload the "
                "dataset again."
            )
    folder = resolve_base_model(config.base_model, settings, download=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise DatasetError(
            f"base_model {config.base_model!r} has no fast (Rust) tokenizer, which Seedlab needs "
            "to store the tokenizer with the model; pick a model with a tokenizer.json."
        )
    hf_config = AutoConfig.from_pretrained(folder)
    max_length = _max_length(config, hf_config, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pre = PretrainedTextPreprocessor(
        text_col, backend.to_str(), max_length, int(pad_id), config.base_model
    )
    task, classes, splits = split_for_run(frame, schema, config)
    encoder = TargetEncoder.fit(splits.train[target_col], task, classes)

    def ids(part: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(pre.transform(part[text_col].tolist())).to(choice.device)

    def targets(part: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(encoder.encode(part[target_col])).to(choice.device)

    spec = InputSpec(
        kind="text",
        shape=(max_length,),
        vocab_size=int(getattr(hf_config, "vocab_size", 0) or len(tokenizer)),
        pad_index=int(pad_id),
        encoder={
            "config": json.loads(hf_config.to_json_string(use_diff=False)),
            "hidden_size": int(hf_config.hidden_size),
        },
        weights=str(folder),
    )
    x_train: Any = ids(splits.train)
    x_val: Any = ids(splits.val)
    if config.encoder_mode == "frozen":
        extractor = FeatureExtractor(config, spec, choice.device)
        x_train, x_val = FrozenFeatures(x_train, extractor), FrozenFeatures(x_val, extractor)
    log.info("base model %s from %s, max_length %d", config.base_model, folder, max_length)
    train_data = TrainData(
        x_train=x_train,
        y_train=targets(splits.train),
        x_val=x_val,
        y_val=targets(splits.val),
        task=task,
        n_outputs=len(classes) if task == "classification" else 1,
        spec=spec,
        target_std=encoder.std,
    )
    return text_prepared(train_data, splits, ids, pre, encoder, task, text_col, target_col)
