"""What a model is told about its input: the dataset kind and one sample's tensor shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """Per-sample input description shared by data preparation, model builders and checkpoints.

    shape is one sample's tensor shape: (n_features,) for tables, (channels, height, width) for
    images, (max_length,) token ids for text (vocab_size then counts the ids, pad_index pads).
    """

    kind: str  # "tabular" | "image" | "text"
    shape: tuple[int, ...]
    vocab_size: int = 0
    pad_index: int = 0

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "vocab_size": self.vocab_size,
            "pad_index": self.pad_index,
        }

    @classmethod
    def from_dict(cls, values: dict) -> InputSpec:
        return cls(
            kind=values["kind"],
            shape=tuple(values["shape"]),
            vocab_size=values.get("vocab_size", 0),
            pad_index=values.get("pad_index", 0),
        )
