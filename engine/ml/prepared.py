"""What data preparation hands the training loop: tensors for train/val/test, the fitted input
preprocessor and target encoder (stored in the checkpoint), and the run's seeded split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from engine.core.catalog import effective_task
from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.stored import StoredDataset
from engine.ml.device import DeviceChoice
from engine.ml.prep.tabular import Splits, TargetEncoder, split_frame
from engine.ml.train import Inputs, TrainData


class InputPreprocessor(Protocol):
    """What turns raw inputs into model tensors; stored as JSON in the checkpoint."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class PreparedData:
    train_data: TrainData
    x_test: Inputs  # a tensor on the device, or a stream for image sets too big for memory
    y_test: np.ndarray  # class indices, or raw target values for regression
    preprocessor: InputPreprocessor
    target: TargetEncoder
    split_sizes: dict[str, int]  # train / val / test
    stratified: bool
    task: str
    # Test-split rows (by position) as something a person can read: a table row as a dict,
    # a text, an image path. The report's "worst mistakes" show these.
    describe_test: Callable[[Sequence[int]], list[dict[str, Any]]] = field(
        default=lambda idx: [{} for _ in idx]
    )
    # The test split's stable row ids (a table row's position in its stored file as text, an
    # image's path inside the dataset), aligned with y_test: the worst mistakes and the stored
    # predictions name rows by them, so the Datasets page can relabel or exclude them.
    test_row_ids: list[str] = field(default_factory=list)
    # Readable names of the input features (tables); empty for images and text.
    feature_names: list[str] = field(default_factory=list)
    # Text datasets: the raw training and test texts, for the TF-IDF baseline (ml/baselines.py).
    raw_texts: tuple[list[str], list[str]] | None = None


Preparer = Callable[[Settings, StoredDataset, RunConfig, DeviceChoice], PreparedData]


def split_for_run(
    frame: pd.DataFrame, schema: dict[str, Any], config: RunConfig
) -> tuple[str, list[str] | None, Splits]:
    """The run's task, the classes, and the seeded (stratified when it can) three-way split:
    the same for every dataset kind."""
    target_col = schema["target"]
    task = effective_task(config.task, schema["task"])
    classes = schema.get("classes")
    if task == "classification" and not classes:
        raise DatasetError(
            f"The target {target_col!r} is numeric with many distinct values; "
            "use task=regression (or auto)."
        )
    splits = split_frame(
        frame,
        target=target_col,
        task=task,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    return task, classes, splits


def row_ids_of(part: pd.DataFrame) -> list[str]:
    """A split's row ids: its `row_id` column when the frame carries one (a dataset version),
    else its index, the row's position in the stored file (split_frame keeps the index)."""
    if "row_id" in part.columns:
        return part["row_id"].astype(str).tolist()
    return [str(i) for i in part.index]


def text_prepared(
    train_data: TrainData,
    splits: Splits,
    ids: Callable[[pd.DataFrame], Any],
    pre: Any,  # noqa: ANN401 - the run's text preprocessor (word or pretrained tokenizer)
    encoder: TargetEncoder,
    task: str,
    text_col: str,
    target_col: str,
) -> PreparedData:
    """The test split and what a text run keeps of its rows, for either tokenizer."""
    if task == "classification":
        y_test = encoder.encode(splits.test[target_col])
    else:
        y_test = splits.test[target_col].to_numpy(dtype=np.float64)
    test_texts = splits.test[text_col].fillna("").astype(str).tolist()

    def describe_test(positions: Sequence[int]) -> list[dict[str, Any]]:
        return [{"text": test_texts[i]} for i in positions]

    return PreparedData(
        train_data,
        ids(splits.test),
        y_test,
        pre,
        encoder,
        split_sizes={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        stratified=splits.stratified,
        task=task,
        describe_test=describe_test,
        test_row_ids=row_ids_of(splits.test),
        raw_texts=(splits.train[text_col].fillna("").astype(str).tolist(), test_texts),
    )
