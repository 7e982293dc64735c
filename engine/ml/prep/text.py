"""A stored text dataset → token-id tensors on the device; the tokenizer sees train rows only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.data.tokenizer import WordTokenizer


@dataclass
class TextPreprocessor:
    """Which column holds the text and how it becomes ids; stored as JSON in the checkpoint."""

    text_column: str
    tokenizer: WordTokenizer

    def transform(self, texts: Sequence[Any]) -> np.ndarray:
        return self.tokenizer.encode(["" if pd.isna(t) else str(t) for t in texts])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "text_column": self.text_column,
            "tokenizer": self.tokenizer.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextPreprocessor:
        return cls(data["text_column"], WordTokenizer.from_dict(data["tokenizer"]))
