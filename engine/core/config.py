"""RunConfig: every training knob, typed, with its default and a one-line doc.

The dashboard form, `seedlab runs submit --set key=value` and stored runs all go through it, so
an invalid value gets the same message everywhere: the field, the problem, the allowed values.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.core.catalog import MODEL_FAMILIES
from engine.core.errors import ConfigError
from engine.core.pretrained import DEFAULT_BASE_MODEL

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
        description="model family; auto races a few that fit the dataset's kind on the "
        "validation split and trains the best (MLPs for tables; CNN and ResNet for images; "
        "TextCNN, embedding bag and a pretrained encoder when one is here, for text); "
        "pretrained = a Hugging Face text encoder or, on images, a vision backbone with a new "
        "head",
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
    # --- pretrained text encoder (engine/ml/models/pretrained.py)
    base_model: str = Field(
        DEFAULT_BASE_MODEL,
        min_length=1,
        max_length=500,
        description="pretrained encoder: its weights: minilm (all-MiniLM-L6-v2, bundled as a "
        "Python package), a Hugging Face hub id such as distilbert/distilbert-base-uncased "
        "(downloaded once), or a local model folder; on images a vision backbone such as "
        "microsoft/resnet-18 (the default there) or a folder with its preprocessor_config.json",
    )
    encoder_mode: Literal["frozen", "lora", "full"] = Field(
        "frozen",
        description="pretrained encoder: frozen = train only the new head (fast on a CPU); "
        "lora = low-rank adapters on the attention (text only); full = fine-tune every weight",
    )
    lora_rank: int = Field(
        8, ge=1, le=256, description="pretrained encoder, LoRA: rank of each adapter"
    )
    head_hidden: int = Field(
        256,
        ge=0,
        le=8192,
        description="pretrained encoder: hidden units of the new head (0 = a linear head)",
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
            # A custom type (not ValueError) so the message can name both fields in the
            # words of whoever asks (the form's labels, or the keys `--set` takes).
            raise PydanticCustomError(
                "heads_must_divide",
                "transformer_heads ({heads}) must divide embedding_dim ({width}), "
                "e.g. embedding_dim={fitting}",
                {"heads": self.transformer_heads, "width": self.embedding_dim, "fitting": fitting},
            )
        return self

    @model_validator(mode="after")
    def _check_fractions(self) -> RunConfig:
        if self.val_fraction + self.test_fraction >= 0.8:
            raise PydanticCustomError(
                "split_too_large",
                "val_fraction + test_fraction must leave at least 20% of rows for training; "
                "got {val} + {test}",
                {"val": self.val_fraction, "test": self.test_fraction},
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


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid value: the fields it is about (the form shows the sentence beside each) and a
    sentence that names them as the reader knows them."""

    fields: tuple[str, ...]
    sentence: str


# Errors about two fields at once (model validators above): which fields, and the sentence.
_PAIR_FIELDS = {
    "split_too_large": ("val_fraction", "test_fraction"),
    "heads_must_divide": ("transformer_heads", "embedding_dim"),
}


def _number(value: Any) -> str:  # noqa: ANN401 - whatever was entered
    """10,000,000 rather than 10000000 or 1e+07; text as typed, quoted."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


def _limits(name: str) -> str:
    """The allowed range of a numeric field in words: "between 1 and 10,000"."""
    low = high = None
    low_open = high_open = False
    for rule in RunConfig.model_fields[name].metadata:
        if isinstance(rule, Ge):
            low = rule.ge
        elif isinstance(rule, Gt):
            low, low_open = rule.gt, True
        elif isinstance(rule, Le):
            high = rule.le
        elif isinstance(rule, Lt):
            high, high_open = rule.lt, True
    whole = " whole number" if RunConfig.model_fields[name].annotation is int else ""
    if low is not None and high is not None:
        if not low_open and not high_open:
            return f"a{whole or ' number'} between {_number(low)} and {_number(high)}"
        lower = f"more than {_number(low)}" if low_open else f"at least {_number(low)}"
        upper = f"less than {_number(high)}" if high_open else f"at most {_number(high)}"
        return f"{lower} and {upper}"
    if low is not None:
        return f"more than {_number(low)}" if low_open else f"at least {_number(low)}"
    if high is not None:
        return f"less than {_number(high)}" if high_open else f"at most {_number(high)}"
    return f"a{whole or ' number'}"


def _unknown_field(loc: str) -> str:
    close = _ALIASES.get(loc) or next(iter(difflib.get_close_matches(loc, FIELD_NAMES, n=1)), None)
    hint = f" Did you mean '{close}'?" if close else ""
    return f"{loc}: unknown field.{hint} Valid fields: {', '.join(FIELD_NAMES)}."


def describe_problem(
    error: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> ConfigProblem:
    """One pydantic error as a sentence a person can act on.

    `labels` names fields as the reader sees them (the New run form's labels); without it the
    field keys are used, as `--set key=value` and config files spell them.
    """

    def name(field: str) -> str:
        return (labels or {}).get(field, field)

    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _PAIR_FIELDS:
        first, second = _PAIR_FIELDS[kind]
        if kind == "split_too_large":
            share = (ctx["val"] + ctx["test"]) * 100
            sentence = (
                f"{name(first)} + {name(second)} must leave at least 20% of rows for training; "
                f"together they take {share:.0f}% ({_number(ctx['val'])} + "
                f"{_number(ctx['test'])}). Make one of them smaller."
            )
        else:
            sentence = (
                f"{name(first)} ({ctx['heads']}) must divide {name(second)} ({ctx['width']}) "
                f"evenly, e.g. {name(second)} {ctx['fitting']}."
            )
        return ConfigProblem((first, second), sentence)
    loc = ".".join(str(p) for p in error["loc"])
    field = str(error["loc"][0]) if error["loc"] else ""
    if kind == "extra_forbidden":
        return ConfigProblem((loc,), _unknown_field(loc))
    if field not in RunConfig.model_fields:  # not one field: the config as a whole
        message = str(error["msg"]).removeprefix("Value error, ")
        return ConfigProblem((), f"The run config {message[:1].lower()}{message[1:]}.")
    label, given = name(field), error.get("input")
    item = len(error["loc"]) > 1 and isinstance(error["loc"][1], int)
    if item:  # one value of a list field, e.g. hidden_sizes "64,x"
        label = f"{label} (value {error['loc'][1] + 1})"
    allowed = "a whole number" if item else _limits(field)
    if isinstance(given, float) and not math.isfinite(given):  # nan fails every comparison
        kind = "finite_number"
    if kind in {"greater_than", "greater_than_equal"}:
        sentence = f"{label} must be {allowed}; {_number(given)} is too small."
    elif kind in {"less_than", "less_than_equal"}:
        sentence = f"{label} must be {allowed}; {_number(given)} is too large."
    elif kind in {"int_parsing", "int_type", "int_from_float"}:
        sentence = f"{label} must be {allowed}; {_number(given)} is not a whole number."
    elif kind in {"float_parsing", "float_type"}:
        sentence = f"{label} must be {allowed}; {_number(given)} is not a number."
    elif kind == "finite_number":
        sentence = f"{label} must be {allowed}; {_number(given)} is not a finite number."
    elif kind == "literal_error":
        sentence = f"{label} must be one of {ctx.get('expected')}; got {_number(given)}."
    elif kind in {"bool_parsing", "bool_type"}:
        sentence = f"{label} must be true or false; got {_number(given)}."
    elif kind in {"too_long", "too_short"}:
        bound = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        most = "at most" if kind == "too_long" else "at least"
        sentence = f"{label} takes {most} {bound} value(s); got {ctx.get('actual_length')}."
    elif kind in {"list_type", "list_of_ints"}:
        sentence = f"{label} must be a list of whole numbers, e.g. 128,64; got {_number(given)}."
    else:
        # Our own validators already say what is wrong and quote the value.
        message = str(error["msg"]).removeprefix("Value error, ")
        sentence = f"{label}: {message}" + ("" if message.endswith(".") else ".")
    return ConfigProblem((field,), sentence)


def config_problems(
    values: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> list[ConfigProblem]:
    """Every invalid value of `values` as a sentence (empty when they make a valid RunConfig)."""
    try:
        RunConfig.model_validate(dict(values))
    except ValidationError as exc:
        return [describe_problem(e, labels) for e in exc.errors()]
    return []


def validate_config(values: dict[str, Any]) -> RunConfig:
    """Build a RunConfig or raise ConfigError naming each bad field and what it accepts."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        problems = [describe_problem(e) for e in exc.errors()]
        raise ConfigError(
            "Invalid run config: " + " ".join(p.sentence for p in problems), problems=problems
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
