"""Text classifiers over padded token ids (N, max_length): the families the field uses.

Every model takes int64 ids where 0 pads (engine/data/tokenizer.py) and derives its own mask
from them, so the batches the training loop slices need no separate mask tensor. Each forward
first drops the columns that are padding in every row of the batch: short texts in a long
max_length then cost what their length costs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from engine.core.config import RunConfig
from engine.core.errors import ConfigError
from engine.data.tokenizer import PAD_ID
from engine.ml.inputs import InputSpec


def trim_padding(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids without all-padding trailing columns, tokens per row). Texts are left-aligned."""
    lengths = (ids != PAD_ID).sum(dim=1)
    if torch.compiler.is_exporting() or torch.jit.is_tracing():
        # An exported graph (ONNX, torch.export, TorchScript) cannot depend on the data's
        # length; the full width gives the same outputs, since every model masks padding.
        return ids, lengths
    longest = max(1, int(lengths.max())) if len(ids) else 1
    return ids[:, :longest], lengths


class EmbeddingBag(nn.Module):
    """fastText-style: the mean of the word embeddings, then a linear layer. Fast baseline."""

    def __init__(self, vocab: int, dim: int, dropout: float, n_outputs: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=PAD_ID)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, n_outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, lengths = trim_padding(ids)
        summed = self.embed(ids).sum(dim=1)  # the padding row of the table is all zeros
        mean = summed / lengths.clamp(min=1).unsqueeze(1).to(summed.dtype)
        return self.head(self.drop(mean))


class TextCNN(nn.Module):
    """Kim (2014): n-gram convolutions over the embeddings, max-pooled over the real tokens."""

    def __init__(
        self,
        vocab: int,
        dim: int,
        filters: int,
        kernel_sizes: list[int],
        dropout: float,
        n_outputs: int,
    ) -> None:
        super().__init__()
        self.kernel_sizes = list(kernel_sizes)
        self.embed = nn.Embedding(vocab, dim, padding_idx=PAD_ID)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, k) for k in self.kernel_sizes)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(filters * len(self.kernel_sizes), n_outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, lengths = trim_padding(ids)
        widest = max(self.kernel_sizes)
        if ids.shape[1] < widest:  # a batch of texts shorter than the widest n-gram
            ids = nn.functional.pad(ids, (0, widest - ids.shape[1]), value=PAD_ID)
        emb = self.drop(self.embed(ids)).transpose(1, 2)  # (B, dim, L)
        positions = torch.arange(ids.shape[1], device=ids.device)
        pooled = []
        for conv, k in zip(self.convs, self.kernel_sizes, strict=True):
            h = torch.relu(conv(emb))  # (B, filters, L - k + 1), all >= 0
            # Windows that start past the text's end see only padding; zero is a safe fill for
            # a max over ReLU outputs, and every row keeps its first window.
            valid = positions[: h.shape[2]].unsqueeze(0) < (lengths - k + 1).clamp(min=1)[:, None]
            pooled.append(h.masked_fill(~valid.unsqueeze(1), 0.0).amax(dim=2))
        return self.head(self.drop(torch.cat(pooled, dim=1)))


class RecurrentClassifier(nn.Module):
    """A (bidirectional) LSTM or GRU over packed sequences; the last layer's final states."""

    def __init__(
        self,
        cell: str,
        vocab: int,
        dim: int,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
        n_outputs: int,
    ) -> None:
        super().__init__()
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.directions = 2 if bidirectional else 1
        self.embed = nn.Embedding(vocab, dim, padding_idx=PAD_ID)
        self.rnn = rnn_class(
            dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * self.directions, n_outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, lengths = trim_padding(ids)
        emb = self.drop(self.embed(ids))
        # Packing makes each direction stop at the text's real end (the backward pass starts at
        # the last word, not at the padding). An empty text is read as one padding token.
        packed = pack_padded_sequence(
            emb, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, state = self.rnn(packed)
        final = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        last = final[-self.directions :].transpose(0, 1).reshape(ids.shape[0], -1)
        return self.head(self.drop(last))


class TransformerClassifier(nn.Module):
    """A small pre-norm Transformer encoder with learned positions and masked mean pooling."""

    def __init__(
        self,
        vocab: int,
        width: int,
        heads: int,
        layers: int,
        ff_dim: int,
        dropout: float,
        max_length: int,
        n_outputs: int,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width, padding_idx=PAD_ID)
        self.positions = nn.Embedding(max_length, width)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        # Nested tensors only speed up inference and warn with norm_first; plain masks suffice.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, _ = trim_padding(ids)
        padding = ids == PAD_ID
        # A row masked everywhere makes attention NaN; an empty text attends to its first slot.
        padding[:, 0] = False
        steps = torch.arange(ids.shape[1], device=ids.device)
        h = self.drop(self.embed(ids) + self.positions(steps).unsqueeze(0))
        h = self.encoder(h, src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(dim=1) / keep.sum(dim=1)
        return self.head(self.drop(self.norm(pooled)))


def _vocab(spec: InputSpec) -> int:
    if spec.kind != "text" or spec.vocab_size < 2:
        raise ConfigError("text models need token ids from a text dataset")
    return spec.vocab_size


def build_embedding_bag(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return EmbeddingBag(_vocab(spec), config.embedding_dim, config.text_dropout, n_outputs)


def build_textcnn(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return TextCNN(
        _vocab(spec),
        config.embedding_dim,
        config.textcnn_filters,
        config.textcnn_kernel_sizes,
        config.text_dropout,
        n_outputs,
    )


def _recurrent(cell: str, config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return RecurrentClassifier(
        cell,
        _vocab(spec),
        config.embedding_dim,
        config.rnn_hidden_size,
        config.text_layers,
        config.rnn_bidirectional,
        config.text_dropout,
        n_outputs,
    )


def build_lstm(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return _recurrent("lstm", config, spec, n_outputs)


def build_gru(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    return _recurrent("gru", config, spec, n_outputs)


def build_transformer(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    if config.embedding_dim % config.transformer_heads:
        raise ConfigError(
            f"transformer_heads ({config.transformer_heads}) must divide embedding_dim "
            f"({config.embedding_dim})"
        )
    return TransformerClassifier(
        _vocab(spec),
        config.embedding_dim,
        config.transformer_heads,
        config.text_layers,
        config.transformer_ff_dim,
        config.text_dropout,
        int(spec.shape[0]),
        n_outputs,
    )


TEXT_BUILDERS = {
    "embedding_bag": build_embedding_bag,
    "textcnn": build_textcnn,
    "lstm": build_lstm,
    "gru": build_gru,
    "transformer": build_transformer,
}
