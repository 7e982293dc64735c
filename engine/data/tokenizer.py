"""A word-level tokenizer fitted on the training texts: lower-casing, a capped vocabulary, padding.

Plain Python and numpy on purpose: nothing is downloaded, and the fitted state is a JSON list of
words, so a checkpoint stays loadable with `torch.load(weights_only=True)` and the Playground can
rebuild the tokenizer with `from_dict` to encode new text the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
N_SPECIAL = 2
# Words (any script: \w is Unicode-aware) with inner apostrophes or hyphens kept ("don't",
# "e-mail"), numbers with a decimal part, and every other non-space character as its own token
# (so "refund!" and "refund" share the word).
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|\w+(?:['’\-]\w+)*|[^\w\s]")


def split_words(text: str, lowercase: bool = True) -> list[str]:
    """The tokens of one text; NFKC folds look-alike forms (ﬁ → fi, full-width digits)."""
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.casefold()
    return _TOKEN.findall(text)


@dataclass
class WordTokenizer:
    """Token ids: 0 pads, 1 is an unknown word, 2.. the vocabulary by falling frequency."""

    vocab: list[str] = field(default_factory=lambda: [PAD, UNK])
    max_length: int = 64
    lowercase: bool = True
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vocab[:N_SPECIAL] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}")
        self._index = {word: i for i, word in enumerate(self.vocab)}

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int,
        min_frequency: int = 1,
        max_length: int = 64,
        lowercase: bool = True,
    ) -> WordTokenizer:
        """Learn the vocabulary from these texts (the training split only)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(split_words(text, lowercase))
        kept = [(w, c) for w, c in counts.items() if c >= min_frequency]
        # Most frequent first; ties by the word, so the same texts always give the same ids.
        kept.sort(key=lambda item: (-item[1], item[0]))
        words = [w for w, _ in kept[: max(0, vocab_size - N_SPECIAL)]]
        return cls(vocab=[PAD, UNK, *words], max_length=max_length, lowercase=lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_ids(self, text: str) -> list[int]:
        """Ids of one text, cut to max_length (its first words), without padding."""
        words = split_words(text, self.lowercase)[: self.max_length]
        return [self._index.get(w, UNK_ID) for w in words]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), max_length) int64 ids, padded with PAD_ID after each text."""
        out = np.full((len(texts), self.max_length), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self.token_ids(text)
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """The words behind some ids (padding left out): for showing what a model saw."""
        return " ".join(self.vocab[i] for i in ids if i != PAD_ID)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "word",
            "vocab": list(self.vocab),
            "max_length": self.max_length,
            "lowercase": self.lowercase,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordTokenizer:
        return cls(
            vocab=list(data["vocab"]),
            max_length=int(data["max_length"]),
            lowercase=bool(data["lowercase"]),
        )
