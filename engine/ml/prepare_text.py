"""A stored text dataset → token-id tensors on the device; the tokenizer sees train rows only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from engine.core.catalog import model_family_for
from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.stored import StoredDataset
from engine.data.tokenizer import PAD_ID, WordTokenizer
from engine.data.versions import load_version_table
from engine.ml.device import DeviceChoice
from engine.ml.inputs import InputSpec
from engine.ml.prep.tabular import TargetEncoder
from engine.ml.prep.text import TextPreprocessor
from engine.ml.prepared import PreparedData, split_for_run, text_prepared
from engine.ml.train import TrainData


def prepare_stored_text(
    settings: Settings, dataset: StoredDataset, config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    frame = load_version_table(settings, dataset)
    if model_family_for(config.model, "text") == "pretrained":
        # The encoder's own tokenizer, not a vocabulary fitted here.
        from engine.ml.prepare_pretrained import prepare_pretrained_text

        return prepare_pretrained_text(settings, frame, dataset.schema, config, choice)
    return prepare_text(frame, dataset.schema, config, choice)


def prepare_text(
    frame: pd.DataFrame, schema: dict[str, Any], config: RunConfig, choice: DeviceChoice
) -> PreparedData:
    """Split by seed, fit the vocabulary on the training texts, move id tensors to the device."""
    target_col, text_col = schema["target"], schema.get("text_column")
    for column in (target_col, text_col):
        if column is None or column not in frame.columns:
            raise DatasetError(
                f"The column {column!r} is missing from the dataset's data file; upload the "
                "dataset again."
            )
    task, classes, splits = split_for_run(frame, schema, config)
    tokenizer = WordTokenizer.fit(
        splits.train[text_col].fillna("").astype(str),
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        max_length=config.max_length,
        lowercase=config.lowercase,
    )
    pre = TextPreprocessor(text_col, tokenizer)
    encoder = TargetEncoder.fit(splits.train[target_col], task, classes)

    def ids(part: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(pre.transform(part[text_col].tolist())).to(choice.device)

    def targets(part: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(encoder.encode(part[target_col])).to(choice.device)

    train_data = TrainData(
        x_train=ids(splits.train),
        y_train=targets(splits.train),
        x_val=ids(splits.val),
        y_val=targets(splits.val),
        task=task,
        n_outputs=len(classes) if task == "classification" else 1,
        spec=InputSpec(
            kind="text",
            shape=(config.max_length,),
            vocab_size=tokenizer.vocab_size,
            pad_index=PAD_ID,
        ),
        target_std=encoder.std,
    )
    return text_prepared(train_data, splits, ids, pre, encoder, task, text_col, target_col)
