"""Text → the pretrained encoder's own token ids, with the tokenizer stored in the checkpoint.

The tokenizer is kept as its `tokenizers` JSON (the fast tokenizer's whole pipeline:
normalisation, word pieces, [CLS]/[SEP]), so a checkpoint tokenises new text exactly as in
training without the base model's files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

KIND = "pretrained_text"


@dataclass
class PretrainedTextPreprocessor:
    text_column: str
    tokenizer_json: str
    max_length: int
    pad_id: int
    base_model: str  # as the run's config names it (shown, never loaded from)
    _tokenizer: Any = field(default=None, repr=False, compare=False)

    def _tok(self) -> Any:  # noqa: ANN401 - a tokenizers.Tokenizer
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self.tokenizer_json)
            # Every text becomes exactly max_length ids: truncated (special tokens counted),
            # then padded at the end with the pad id the model masks.
            tok.enable_truncation(self.max_length)
            tok.enable_padding(pad_id=self.pad_id, length=self.max_length)
            self._tokenizer = tok
        return self._tokenizer

    def encoding(self, text: str, truncate: bool = True) -> Any:  # noqa: ANN401
        """One text's tokenizers.Encoding (tokens, ids, mask); untruncated when asked."""
        tok = self._tok()
        if truncate:
            return tok.encode(text)
        from tokenizers import Tokenizer

        whole = Tokenizer.from_str(self.tokenizer_json)
        whole.no_truncation()
        whole.no_padding()
        return whole.encode(text)

    @property
    def unk_token(self) -> str:
        model = json.loads(self.tokenizer_json).get("model") or {}
        return str(model.get("unk_token") or "[UNK]")

    def transform(self, texts: Sequence[Any]) -> np.ndarray:
        clean = ["" if pd.isna(t) else str(t) for t in texts]
        if not clean:
            return np.zeros((0, self.max_length), dtype=np.int64)
        encoded = self._tok().encode_batch(clean)
        return np.asarray([e.ids for e in encoded], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "text_column": self.text_column,
            "tokenizer": self.tokenizer_json,
            "max_length": self.max_length,
            "pad_id": self.pad_id,
            "base_model": self.base_model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainedTextPreprocessor:
        return cls(
            data["text_column"],
            data["tokenizer"],
            int(data["max_length"]),
            int(data["pad_id"]),
            str(data.get("base_model", "")),
        )
