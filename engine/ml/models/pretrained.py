"""A pretrained Hugging Face text encoder, mean pooling, and a new head: the `pretrained` family.

Three ways to train it (config.encoder_mode): `frozen` (only the head learns; the encoder reads
each text once per run, engine/ml/prepare_pretrained.py caches what it gives), `lora` (low-rank
adapters from peft on the attention projections, plus the head) and `full` (every weight).

The model takes the tokenizer's int64 ids (N, max_length), padded at the end with the
tokenizer's pad id, and derives the attention mask from them. It also takes float inputs
(N, hidden): pooled features the frozen encoder already computed, which go straight to the
head. The whole encoder stays in the state dict either way, so a checkpoint (and an export) is
self-contained: predicting never needs the base model's source again.

The encoder's architecture travels in the input spec (`spec.encoder`, the model's config.json);
its pretrained weights are read only while training starts (`spec.weights`, a folder with
safetensors files). A model rebuilt from a checkpoint starts from the architecture and gets its
weights from the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from engine.core.config import RunConfig
from engine.core.errors import ConfigError
from engine.ml.inputs import InputSpec

# Linear layers LoRA adapts: the attention's query/key/value projections, as BERT-like
# (query/key/value), DistilBERT (q_lin/k_lin/v_lin) and most others (q_proj/…) name them.
ATTENTION_PROJECTIONS = (
    "query",
    "key",
    "value",
    "q_lin",
    "k_lin",
    "v_lin",
    "q_proj",
    "k_proj",
    "v_proj",
)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' vectors (what sentence encoders such as MiniLM are
    trained for); padding is left out."""
    keep = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)


def _encoder(spec: InputSpec) -> nn.Module:
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a run's log gets our lines, not a progress bar per load
    encoder_info = spec.encoder or {}
    if spec.weights:
        # safetensors only: loading never unpickles (engine/ml/pretrained_source.py checks).
        return AutoModel.from_pretrained(spec.weights, use_safetensors=True)
    # Keys left unset (None) are the library's defaults anyway; passed explicitly, some (such
    # as loss_type) only make transformers warn in every log that loads the model.
    hf = {k: v for k, v in (encoder_info.get("config") or {}).items() if v is not None}
    if not hf.get("model_type"):
        raise ConfigError(
            "This pretrained model's checkpoint has no encoder architecture; train it again."
        )
    return AutoModel.from_config(AutoConfig.for_model(**hf))


def _lora_targets(encoder: nn.Module) -> list[str]:
    names = {
        name.rsplit(".", 1)[-1] for name, m in encoder.named_modules() if isinstance(m, nn.Linear)
    }
    targets = [n for n in ATTENTION_PROJECTIONS if n in names]
    if not targets:
        raise ConfigError(
            "encoder_mode lora: this encoder has no attention projection LoRA knows "
            f"({', '.join(ATTENTION_PROJECTIONS)}); use encoder_mode frozen or full."
        )
    return targets


def _add_lora(encoder: nn.Module, rank: int, dropout: float) -> nn.Module:
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=dropout, target_modules=_lora_targets(encoder)
    )
    # Injected in place (no PeftModel wrapper): the encoder keeps its own forward, so tracing
    # and exporting see plain modules.
    return inject_adapter_in_model(config, encoder)


class PretrainedTextModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        hidden: int,
        head_hidden: int,
        dropout: float,
        n_outputs: int,
        pad_id: int,
        mode: str,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pad_id = int(pad_id)
        self.mode = mode
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if head_hidden > 0:
            layers += [nn.Linear(hidden, head_hidden), nn.GELU(), nn.Dropout(dropout)]
            hidden = head_hidden
        layers.append(nn.Linear(hidden, n_outputs))
        self.head = nn.Sequential(*layers)
        for name, param in self.encoder.named_parameters():
            param.requires_grad_(mode == "full" or (mode == "lora" and "lora_" in name))

    @property
    def embed(self) -> nn.Module:
        """The token embedding table (explanations integrate over its output). A property,
        not an attribute: a second name for it would store its weights twice."""
        return self.encoder.get_input_embeddings()

    def train(self, mode: bool = True) -> PretrainedTextModel:
        super().train(mode)
        if self.mode == "frozen":
            # A frozen encoder always reads as at inference (no dropout), like its cached
            # features; only the head trains.
            self.encoder.eval()
        return self

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features (N, hidden) of token ids (N, max_length)."""
        mask = ids != self.pad_id
        if not (torch.compiler.is_exporting() or torch.jit.is_tracing()) and len(ids):
            # Texts are padded at the end: columns that are padding in every row cost
            # attention for nothing (an exported graph keeps the full width, same outputs).
            longest = max(1, int(mask.sum(dim=1).max()))
            ids, mask = ids[:, :longest], mask[:, :longest]
        out = self.encoder(input_ids=ids, attention_mask=mask.long())
        return mean_pool(out.last_hidden_state, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x if x.is_floating_point() else self.encode(x)
        return self.head(features)

    def merged(self) -> PretrainedTextModel:
        """A copy with every LoRA adapter merged into the layer it adapts (plain Linear layers,
        the same outputs): what int8 quantization and pruning work on."""
        import copy

        from peft.tuners.lora import LoraLayer

        merged = copy.deepcopy(self)
        for name, module in list(merged.encoder.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent_name, _, child = name.rpartition(".")
                parent = (
                    merged.encoder.get_submodule(parent_name) if parent_name else merged.encoder
                )
                setattr(parent, child, module.get_base_layer())
        return merged

    def describe_training(self) -> dict[str, Any]:
        """Which layers trained and how many parameters: shown on the Run page."""
        trained = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {
            "mode": self.mode,
            "head_layers": sum(isinstance(m, nn.Linear) for m in self.head),
            "trainable_parameters": int(trained),
            "total_parameters": int(sum(p.numel() for p in self.parameters())),
        }


def build_pretrained(config: RunConfig, spec: InputSpec, n_outputs: int) -> nn.Module:
    if spec.kind != "text" or not spec.encoder:
        raise ConfigError(
            "model pretrained reads text prepared with the encoder's own tokenizer; pick a text "
            "dataset (the run prepares it so)."
        )
    encoder = _encoder(spec)
    if config.encoder_mode == "lora":
        encoder = _add_lora(encoder, config.lora_rank, config.text_dropout)
    hidden = int(spec.encoder.get("hidden_size") or encoder.config.hidden_size)
    return PretrainedTextModel(
        encoder,
        hidden,
        config.head_hidden,
        config.text_dropout,
        n_outputs,
        spec.pad_index,
        config.encoder_mode,
    )
