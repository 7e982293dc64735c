"""Knowledge distillation: a student run learns from a completed teacher run's outputs.

The student is an ordinary engine run whose config names its teacher (`distill_from`); the
runner calls `attach_teacher` after preparing the data, and the training loop blends the label
loss with matching the teacher (engine/ml/distill_loss.py). `student_config` proposes a smaller
model with the teacher's data settings, so both see the same split and the same inputs.
"""

from __future__ import annotations

from typing import Any

from engine.core.config import RunConfig, validate_config
from engine.core.errors import ConfigError
from engine.core.run_files import checkpoint_path
from engine.core.settings import Settings
from engine.ml.device import DeviceChoice
from engine.ml.predictor import Predictor, PredictorError
from engine.ml.prepared import PreparedData

# What decides the split and the model's input: a student must keep the teacher's values.
DATA_FIELDS = (
    "task",
    "val_fraction",
    "test_fraction",
    "seed",
    "max_categories",
    "image_size",
    "channels",
    "normalize",
    "max_length",
    "vocab_size",
    "min_frequency",
    "lowercase",
)


def attach_teacher(
    settings: Settings, config: RunConfig, data: PreparedData, choice: DeviceChoice
) -> Predictor | None:
    """Load the teacher named by `config.distill_from` onto the device and hand it to the
    training data; None when the run has no teacher. ConfigError says what does not fit."""
    if config.distill_from is None:
        return None
    teacher_id = config.distill_from
    refuse_pretrained_distillation(config.model)
    try:
        teacher = Predictor.load(checkpoint_path(settings, teacher_id))
    except PredictorError as exc:
        raise ConfigError(
            f"distill_from: teacher run #{teacher_id} has no usable model ({exc}). "
            "Pick a completed run on this dataset."
        ) from None
    refuse_pretrained_distillation(teacher.model_family)
    if teacher.task != data.task or teacher.spec != data.train_data.spec:
        raise ConfigError(
            f"distill_from: teacher run #{teacher_id} was trained for a different task or input "
            f"({teacher.task}, {teacher.spec.kind} {teacher.spec.shape}); a student needs the "
            "teacher's dataset and data settings: " + ", ".join(DATA_FIELDS)
        )
    if teacher.payload["preprocessor"] != data.preprocessor.to_dict():
        raise ConfigError(
            f"distill_from: teacher run #{teacher_id} saw its inputs prepared differently (another "
            "dataset, split or preprocessing); keep the teacher's " + ", ".join(DATA_FIELDS)
        )
    model = teacher.model.to(choice.device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    data.train_data.teacher = model
    return teacher


def refuse_pretrained_distillation(model: str) -> None:
    """Distillation shrinks a model Seedlab builds; a pretrained encoder keeps its size, and
    its frozen features would not be the teacher's. Said before anything trains."""
    if model == "pretrained":
        raise ConfigError(
            "Distillation does not apply to pretrained text encoders or image backbones "
            "(teacher or student) yet. To make one smaller or faster, use int8 quantization or "
            "pruning under Export & compress, or train a small student (textcnn, embedding_bag "
            "or cnn) of another run."
        )


def smaller(config: dict[str, Any]) -> dict[str, Any]:
    """A model about a quarter of the teacher's size: half the width of each layer."""
    c = validate_config(config)
    return {
        "hidden_sizes": [max(4, h // 2) for h in c.hidden_sizes],
        "cnn_width": max(4, c.cnn_width // 2),
        "embedding_dim": max(8, c.embedding_dim // 2 // c.transformer_heads * c.transformer_heads)
        if c.model == "transformer"
        else max(8, c.embedding_dim // 2),
        "rnn_hidden_size": max(4, c.rnn_hidden_size // 2),
        "textcnn_filters": max(4, c.textcnn_filters // 2),
        "transformer_ff_dim": max(8, c.transformer_ff_dim // 2),
    }


def student_config(
    teacher_config: dict[str, Any], teacher_id: int, overrides: dict[str, Any]
) -> RunConfig:
    """The teacher's config with a smaller model, the teacher named, then the user's overrides
    (which may not change the data settings)."""
    refuse_pretrained_distillation(str(teacher_config.get("model", "auto")))
    refuse_pretrained_distillation(str(overrides.get("model", "auto")))
    changed = [k for k in DATA_FIELDS if k in overrides and overrides[k] != teacher_config.get(k)]
    if changed:
        raise ConfigError(
            f"A student keeps its teacher's data settings; these cannot change: {changed}"
        )
    values = {**teacher_config, **smaller(teacher_config), "distill_from": teacher_id}
    return validate_config({**values, **overrides})
