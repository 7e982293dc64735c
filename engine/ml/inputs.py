"""What a model is told about its input: the dataset kind and one sample's tensor shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    # Pretrained text encoders (engine/ml/models/pretrained.py): the encoder's architecture
    # (its config.json as a dict, and its hidden size), stored with the checkpoint.
    encoder: dict[str, Any] | None = field(default=None, hash=False)
    # ...and the folder its pretrained weights are read from while a run starts; never stored
    # (a rebuilt model gets its weights from its checkpoint).
    weights: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "shape": list(self.shape),
            "vocab_size": self.vocab_size,
            "pad_index": self.pad_index,
        }
        if self.encoder is not None:
            out["encoder"] = self.encoder
        return out

    @classmethod
    def from_dict(cls, values: dict) -> InputSpec:
        return cls(
            kind=values["kind"],
            shape=tuple(values["shape"]),
            vocab_size=values.get("vocab_size", 0),
            pad_index=values.get("pad_index", 0),
            encoder=values.get("encoder"),
        )
