"""RunConfig: every training knob, typed, with its default and a one-line doc.

The dashboard form, `seedlab runs submit --set key=value` and stored runs all go through it, so
an invalid value gets the same message everywhere: the field, the problem, the allowed values.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.core.catalog import MODEL_FAMILIES
from engine.core.errors import ConfigError

Task = Literal["auto", "classification", "regression"]


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- data
    task: Task = Field(
        "auto", description="classification or regression; auto infers it from the target"
    )
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="share of rows for validation")
    test_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="share of rows held out for the final test"
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="seeds the split, the weights and the batch order"
    )
    max_categories: int = Field(
        50,
        ge=2,
        le=1000,
        description="one-hot columns per categorical feature; rarer values share an 'other' column",
    )
    # --- model
    model: str = Field(
        "auto",
        description="model family; auto picks one for the dataset's kind (MLP for tables, "
        "a CNN for images, a text CNN for text)",
    )
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [128, 64],
        max_length=8,
        description="width of each hidden layer, e.g. 128,64 (empty = a linear model)",
    )
    activation: Literal["relu", "gelu", "silu", "tanh", "leaky_relu"] = Field(
        "relu", description="non-linearity between hidden layers"
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout after each hidden layer")
    # --- images
    image_size: int = Field(
        0,
        ge=0,
        le=512,
        description="images: resize to this square side in pixels; 0 = the dataset's median "
        "side, at most 32",
    )
    channels: Literal["auto", 1, 3] = Field(
        "auto", description="images: 1 = grayscale, 3 = RGB; auto = 1 only if every image is gray"
    )
    normalize: bool = Field(
        True, description="images: standardize each channel with the training images' mean/std"
    )
    augment_flip: bool = Field(
        False, description="images: mirror training images left-right at random (not for digits)"
    )
    augment_crop: int = Field(
        0, ge=0, le=64, description="images: random crop, shifting by up to this many pixels"
    )
    augment_rotation: float = Field(
        0.0, ge=0, le=45, description="images: random rotation of up to this many degrees"
    )
    augment_color: float = Field(
        0.0,
        ge=0,
        le=1,
        description="images: colour jitter, random brightness/contrast/saturation change of up "
        "to this share",
    )
    cnn_depth: int = Field(
        3,
        ge=1,
        le=8,
        description="images: conv blocks (cnn) or stages (resnet); each halves the side",
    )
    cnn_width: int = Field(
        32, ge=4, le=512, description="images: channels of the first block, doubling per block"
    )
    batch_norm: bool = Field(True, description="images: batch normalization after each conv")
    resnet_blocks: int = Field(
        1, ge=1, le=8, description="images: residual blocks per resnet stage"
    )
    # --- training
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="optimizer")
    learning_rate: float = Field(1e-3, gt=0, le=10, description="initial learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (ignored by Adam/AdamW)")
    weight_decay: float = Field(1e-4, ge=0, le=1, description="L2 penalty (decoupled for AdamW)")
    batch_size: int = Field(32, ge=1, le=65536, description="rows per optimizer step")
    epochs: int = Field(50, ge=1, le=10000, description="passes over the training rows")
    restore_best_weights: bool = Field(
        True, description="end with the weights of the epoch with the best monitored metric"
    )
    lr_schedule: Literal["cosine", "step", "none"] = Field(
        "cosine", description="learning-rate schedule over the epochs"
    )
    step_size: int = Field(10, ge=1, description="step schedule: epochs between decays")
    gamma: float = Field(0.5, gt=0, le=1, description="step schedule: decay factor")
    warmup_epochs: int = Field(
        0, ge=0, le=1000, description="epochs of linear learning-rate warm-up from 10% (0 = off)"
    )
    grad_clip_norm: float = Field(
        0.0, ge=0, description="clip the gradient norm to this value each step (0 = off)"
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="classification: spread this share of the target over all classes",
    )
    imbalance: Literal["none", "class_weights", "weighted_sampling"] = Field(
        "none",
        description="classification: weight the loss by inverse class frequency, or sample "
        "rare classes more often",
    )
    monitor: Literal[
        "val_loss", "val_accuracy", "val_f1_macro", "val_balanced_accuracy", "val_rmse", "val_mae"
    ] = Field(
        "val_loss",
        description="validation metric that picks the best epoch and drives early stopping",
    )
    early_stopping_patience: int = Field(
        0,
        ge=0,
        le=10000,
        description="stop after this many epochs without a better monitored metric (0 = off)",
    )
    # --- knowledge distillation (engine/ml/distill.py): this run learns from a teacher run
    distill_from: int | None = Field(
        None,
        ge=1,
        description="distillation: id of a completed teacher run on the same dataset whose "
        "outputs this run learns from (empty = off)",
    )
    distill_temperature: float = Field(
        2.0, gt=0, le=100, description="distillation: softens the teacher's class probabilities"
    )
    distill_alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description="distillation: weight of matching the teacher (the rest: the true labels)",
    )
    # --- hardware
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto picks the GPU when there is one"
    )
    compile: bool = Field(
        False,
        description="compile the model with torch.compile: the first epoch waits for the "
        "compiler (tens of seconds), later ones can run faster on large models and GPUs",
    )
    data_loading: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description="images: memory = every image as a tensor on the device; stream = batches "
        "read from disk by DataLoader workers (for sets larger than memory); auto picks by size",
    )
    loader_workers: int = Field(
        -1,
        ge=-1,
        le=64,
        description="images, when streamed: DataLoader worker processes (-1 = one per spare core, "
        "at most 4)",
    )
    processes: int = Field(
        1,
        ge=1,
        le=64,
        description="data-parallel training processes (PyTorch DDP: gloo on the CPU, NCCL on "
        "GPUs); each gets a share of every batch, so batch_size stays the total per step",
    )
    cpus: float = Field(
        1.0,
        gt=0,
        le=1024,
        description="Ray executor: CPUs reserved for each training process on the cluster",
    )
    memory_gb: float = Field(
        0.0,
        ge=0,
        le=4096,
        description="Ray executor: memory reserved for each training process, in GiB "
        "(0 = no reservation)",
    )
    # --- text
    max_length: int = Field(
        64,
        ge=1,
        le=4096,
        description="text: tokens kept per text (its first); shorter texts are padded",
    )
    vocab_size: int = Field(
        20000,
        ge=3,
        le=2_000_000,
        description="text: vocabulary cap, the most frequent training words; the rest become <unk>",
    )
    min_frequency: int = Field(
        1,
        ge=1,
        le=10000,
        description="text: occurrences in training texts a word needs for its own id",
    )
    lowercase: bool = Field(True, description="text: lower-case texts before splitting into words")
    embedding_dim: int = Field(
        128, ge=2, le=4096, description="text: word embedding width (the Transformer's model width)"
    )
    rnn_hidden_size: int = Field(
        128, ge=1, le=4096, description="text LSTM/GRU: hidden units per direction"
    )
    rnn_bidirectional: bool = Field(
        True, description="text LSTM/GRU: also read each text backwards and join both readings"
    )
    text_layers: int = Field(
        1, ge=1, le=24, description="text LSTM/GRU/Transformer: stacked recurrent or encoder layers"
    )
    transformer_heads: int = Field(
        4, ge=1, le=64, description="text Transformer: attention heads (must divide embedding_dim)"
    )
    transformer_ff_dim: int = Field(
        256, ge=1, le=16384, description="text Transformer: feed-forward width inside each layer"
    )
    textcnn_filters: int = Field(
        100, ge=1, le=4096, description="TextCNN: convolution filters per kernel size"
    )
    textcnn_kernel_sizes: list[int] = Field(
        default_factory=lambda: [3, 4, 5],
        min_length=1,
        max_length=8,
        description="TextCNN: n-gram widths the filters read, e.g. 3,4,5",
    )
    text_dropout: float = Field(
        0.2, ge=0, lt=1, description="text models: dropout on embeddings and before the output"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads True as 1; `epochs: yes` in a YAML file is a mistake, not one epoch.
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation in (int, float):
            raise ValueError(f"needs a number, got {value!r}")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if value != "auto" and value not in MODEL_FAMILIES:
            raise ValueError(f"must be auto or one of {', '.join(MODEL_FAMILIES)}; got {value!r}")
        return value

    @field_validator("distill_from", mode="before")
    @classmethod
    def _parse_teacher(cls, value: Any) -> Any:
        # Forms give "" for "no teacher", and "#12" is how runs are shown.
        if isinstance(value, str):
            value = value.strip().lstrip("#")
            return int(value) if value.isdigit() else (value or None)
        return value

    @field_validator("channels", mode="before")
    @classmethod
    def _parse_channels(cls, value: Any) -> Any:
        # Forms and --set give "3"; the stored config holds the number.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("hidden_sizes", mode="before")
    @classmethod
    def _parse_sizes(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise ValueError(
                    f"write integers separated by commas, e.g. 128,64; got {value!r}"
                ) from None
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("hidden_sizes")
    @classmethod
    def _check_sizes(cls, value: list[int]) -> list[int]:
        for size in value:
            if not 1 <= size <= 8192:
                raise ValueError(f"each hidden size must be between 1 and 8192; got {size}")
        return value

    # --- text
    @field_validator("textcnn_kernel_sizes", mode="before")
    @classmethod
    def _parse_kernels(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return [int(p) for p in value.replace(";", ",").split(",") if p.strip()]
            except ValueError:
                raise ValueError(
                    f"write integers separated by commas, e.g. 3,4,5; got {value!r}"
                ) from None
        return [value] if isinstance(value, int) else value

    @field_validator("textcnn_kernel_sizes")
    @classmethod
    def _check_kernels(cls, value: list[int]) -> list[int]:
        if any(not 1 <= k <= 64 for k in value):
            raise ValueError(f"each kernel size must be between 1 and 64; got {value}")
        return value

    @model_validator(mode="after")
    def _check_heads(self) -> RunConfig:
        if self.model == "transformer" and self.embedding_dim % self.transformer_heads:
            fitting = self.transformer_heads * max(
                1, round(self.embedding_dim / self.transformer_heads)
            )
            raise ValueError(
                f"transformer_heads ({self.transformer_heads}) must divide embedding_dim "
                f"({self.embedding_dim}), e.g. embedding_dim={fitting}"
            )
        return self

    @model_validator(mode="after")
    def _check_fractions(self) -> RunConfig:
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ValueError(
                "val_fraction + test_fraction must leave at least 20% of rows for training; got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


FIELD_NAMES = tuple(RunConfig.model_fields)
_ALIASES = {
    "lr": "learning_rate",
    "bs": "batch_size",
    "wd": "weight_decay",
    "layers": "hidden_sizes",
    "hidden": "hidden_sizes",
    "scheduler": "lr_schedule",
    "optim": "optimizer",
}


def field_help(name: str) -> str:
    return RunConfig.model_fields[name].description or ""


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        close = _ALIASES.get(loc) or next(
            iter(difflib.get_close_matches(loc, FIELD_NAMES, n=1)), None
        )
        hint = f" Did you mean '{close}'?" if close else ""
        return f"{loc}: unknown field.{hint} Valid fields: {', '.join(FIELD_NAMES)}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in {"model_type", "dict_type"} or loc == "config":
        return f"config: {message}"
    if error["type"] == "value_error":  # our own validators already quote the value
        return f"{loc}: {message}"
    return f"{loc}: {message} (got {error.get('input')!r})"


def validate_config(values: dict[str, Any]) -> RunConfig:
    """Build a RunConfig or raise ConfigError naming each bad field and what it accepts."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(
            "Invalid run config — " + "; ".join(_describe(e) for e in exc.errors())
        ) from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings → dict; values are read as YAML scalars/lists (0.01, true, [64, 32])."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, e.g. learning_rate=0.01; got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip()
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON or YAML file holding a mapping of config fields."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {path} is not UTF-8 text; save it as UTF-8.") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        # YAML errors draw the offending line over several lines; the first one says it.
        problem = str(exc).strip().splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(
            f"Config file {path} is not valid JSON/YAML{where}: {problem}. Fix it and try again."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of field: value")
    return data
