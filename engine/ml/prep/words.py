"""A free-text column beside other features, as words a table model can use: TF-IDF over the
training split's most common words (sublinear counts, each row scaled to unit length), the
classical text features a gradient-boosted or linear baseline would get. The tokens are those of
text datasets (engine/data/tokenizer.py: NFKC, lower-cased). engine/deploy/bundle_predict.py
repeats `encode` with pandas and numpy alone: a test checks that the two agree."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.data.tokenizer import split_words

# Words kept per text column: the most common in the training rows, each in at least two rows
# (a word of one row teaches nothing that generalises).
MAX_WORDS = 300
MIN_ROWS = 2


def _texts(series: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in series]


def _words(text: str) -> list[str]:
    return [w for w in split_words(text) if any(ch.isalnum() for ch in w)]


@dataclass
class WordsSpec:
    name: str
    vocab: list[str]
    idf: list[float]

    @classmethod
    def fit(cls, name: str, series: pd.Series, max_words: int = MAX_WORDS) -> WordsSpec:
        rows = [set(_words(t)) for t in _texts(series)]
        frequency = Counter(w for row in rows for w in row)
        common = [w for w, n in frequency.items() if n >= MIN_ROWS]
        kept = sorted(common, key=lambda w: (-frequency[w], w))[:max_words]
        n = len(rows)
        idf = [math.log((1 + n) / (1 + frequency[w])) + 1 for w in kept]
        return cls(name=name, vocab=kept, idf=idf)

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.name}:word={w}" for w in self.vocab]

    @property
    def width(self) -> int:
        return len(self.vocab)

    def encode(self, series: pd.Series) -> np.ndarray:
        index = {w: i for i, w in enumerate(self.vocab)}
        counts = np.zeros((len(series), len(self.vocab)))
        for row, text in enumerate(_texts(series)):
            for word in _words(text):
                column = index.get(word)
                if column is not None:
                    counts[row, column] += 1
        weighted = np.log1p(counts) * np.asarray(self.idf, dtype=np.float64)
        norms = np.linalg.norm(weighted, axis=1, keepdims=True)
        return weighted / np.where(norms > 0, norms, 1.0)
