"""Why a model gave one prediction: per-input attributions with Captum's Integrated Gradients.

Built on engine.ml.predictor (raw input → tensors), with no Streamlit, so the Playground, the CLI
and tests share it. What is explained is the number a user reads: the predicted class's
probability for classification, the value in target units for regression. Integrated Gradients
splits the change of that number between a reference input and this one over the input's parts
(its attributions sum to that change), so every score reads "moved the output by this much":

- tables: one contribution per raw column (one-hot and missing-indicator columns summed back
  into their column), against a typical row (medians, most frequent categories);
- text: one score per token the model read, against all-zero embeddings (what padding looks
  like to every text model here), computed on the embedding layer since ids have no gradient;
- images: the size of each pixel's attribution, against the mean colour (zero after
  normalization), summed over channels and scaled to 0..1 for an overlay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from engine.data.tokenizer import UNK, split_words
from engine.ml.predictor import Predictor, PredictorError
from engine.ml.prep.pretrained_text import PretrainedTextPreprocessor
from engine.ml.prep.tabular import MISSING, TabularPreprocessor
from engine.ml.prep.text import TextPreprocessor

# Riemann steps of the path integral: enough for tiny models to sum within a few percent of the
# output change, small enough to answer at once on a CPU.
STEPS = 32
INTERNAL_BATCH = 64


@dataclass
class Explanation:
    """Attributions for one input. `target` names the explained output (`p(setosa)`,
    `prediction`); `output` is its value for the input, `reference_output` at the reference."""

    kind: str
    target: str
    output: float
    reference_output: float
    # tables: one row per raw column — feature, value, contribution (largest |contribution| first)
    contributions: pd.DataFrame | None = None
    # text: the tokens the model read (after lower-casing, cut at max_length) and their scores
    tokens: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    unknown: list[bool] = field(default_factory=list)  # tokens outside the vocabulary
    truncated: int = 0  # tokens past max_length, which the model never saw
    # images: (H, W) in 0..1 at the model's input size
    saliency: np.ndarray | None = None


def _output_fn(predictor: Predictor) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """model → the explained output per row, and the factor that puts it in the user's units."""
    model = predictor.model
    if predictor.task == "classification":
        return (lambda x: torch.softmax(model(x).float(), dim=1)), 1.0
    return (lambda x: model(x).float()), float(predictor.target.std)


def _target(predictor: Predictor, x: torch.Tensor, target_class: int | None) -> tuple[int, str]:
    if predictor.task != "classification":
        return 0, "prediction"
    if target_class is None:
        with torch.no_grad():
            target_class = int(predictor.model(x).argmax(dim=1)[0])
    if not 0 <= target_class < len(predictor.classes):
        raise PredictorError(
            f"Class index {target_class} is out of range; the model has {len(predictor.classes)} "
            "classes."
        )
    return target_class, f"p({predictor.classes[target_class]})"


def _integrate(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    reference: torch.Tensor,
    target: int,
    steps: int,
) -> torch.Tensor:
    # Captum is an optional part (`pip install 'seedlab[explain]'`; `make install` has it): imported
    # here, so the Playground and `seedlab predict` load without it and say what to install.
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:
        raise PredictorError(
            "Explanations need Captum, which is not installed: "
            "pip install 'seedlab[explain]' (or `make install`) adds it."
        ) from exc
    ig = IntegratedGradients(forward)
    with torch.enable_grad():
        return ig.attribute(
            x,
            baselines=reference,
            target=target,
            n_steps=steps,
            internal_batch_size=INTERNAL_BATCH,
        ).detach()


def _outputs_at(forward: Callable, target: int, *xs: torch.Tensor) -> list[float]:
    with torch.no_grad():
        return [float(forward(x)[0, target]) for x in xs]


# ---------------------------------------------------------------- tables


def typical_row(pre: TabularPreprocessor) -> pd.DataFrame:
    """The reference row: every numeric column at its training median, every categorical at its
    most frequent training category (categories are stored most frequent first)."""
    row: dict[str, object] = {s.name: s.median for s in pre.numeric}
    for spec in pre.categorical:
        row[spec.name] = spec.categories[0] if spec.categories else None
    for spec in pre.dates:
        row[spec.name] = spec.fill  # the median training date
    for spec in pre.words:
        row[spec.name] = ""  # no words: every word's feature at zero
    return pd.DataFrame([row])


def _column_groups(pre: TabularPreprocessor) -> list[tuple[str, int]]:
    """(raw column, how many encoded features it became), in the encoder's order."""
    groups = []
    for spec in pre.numeric:
        groups.append((spec.name, 2 if spec.add_missing_indicator else 1))
    for spec in pre.categorical:
        groups.append((spec.name, len(spec.categories) + spec.has_other + spec.has_missing))
    for spec in [*pre.dates, *pre.words]:
        groups.append((spec.name, spec.width))
    return groups


def explain_row(
    predictor: Predictor,
    row: pd.DataFrame,
    target_class: int | None = None,
    steps: int = STEPS,
) -> Explanation:
    """Feature contributions for the first row of `row` (a table with the model's columns)."""
    pre = predictor.preprocessor
    if not isinstance(pre, TabularPreprocessor):
        raise PredictorError("Feature contributions are for table models.")
    if len(row) == 0:
        raise PredictorError("There is no row to explain.")
    row = row.iloc[:1]
    x = predictor.encode(row)
    reference = predictor.encode(typical_row(pre))
    target, label = _target(predictor, x, target_class)
    forward, scale = _output_fn(predictor)
    attributions = _integrate(forward, x, reference, target, steps)[0].numpy() * scale
    rows, start = [], 0
    for name, width in _column_groups(pre):
        value = row[name].iloc[0]
        rows.append(
            {
                "feature": name,
                "value": MISSING if pd.isna(value) else value,
                "contribution": float(attributions[start : start + width].sum()),
            }
        )
        start += width
    frame = pd.DataFrame(rows, columns=["feature", "value", "contribution"])
    frame["value"] = frame["value"].astype(str)
    order = frame["contribution"].abs().sort_values(ascending=False, kind="stable").index
    out, ref = _outputs_at(forward, target, x, reference)
    return Explanation(
        kind="tabular",
        target=label,
        output=_in_units(predictor, out),
        reference_output=_in_units(predictor, ref),
        contributions=frame.loc[order].reset_index(drop=True),
    )


def _in_units(predictor: Predictor, value: float) -> float:
    if predictor.task == "classification":
        return value
    return float(predictor.target.decode_regression(np.array([value]))[0])


# ---------------------------------------------------------------- text


def _embedding_layer(model: nn.Module) -> nn.Embedding:
    embed = getattr(model, "embed", None)
    if not isinstance(embed, nn.Embedding):
        raise PredictorError("This text model has no token embedding layer to explain.")
    return embed


def explain_text(
    predictor: Predictor, text: str, target_class: int | None = None, steps: int = STEPS
) -> Explanation:
    """One score per token the model read: how much it moved the explained output."""
    pre = predictor.preprocessor
    if not isinstance(text, str) or not text.strip():
        raise PredictorError("The text is empty: type a sentence for the model to read.")
    if isinstance(pre, PretrainedTextPreprocessor):
        # The encoder's own word pieces, [CLS] and [SEP] included: what it read.
        encoding = pre.encoding(text)
        shown = [t for t, m in zip(encoding.tokens, encoding.attention_mask, strict=True) if m]
        unk = pre.unk_token
        unknown = [t == unk for t in shown]
        truncated = max(0, len(pre.encoding(text, truncate=False).tokens) - len(shown))
    elif isinstance(pre, TextPreprocessor):
        words = split_words(text, pre.tokenizer.lowercase)
        if not words:
            raise PredictorError("The text has no words or symbols the model can read.")
        shown = words[: pre.tokenizer.max_length]
        vocab = set(pre.tokenizer.vocab)
        unknown = [w not in vocab or w == UNK for w in shown]
        truncated = len(words) - len(shown)
    else:
        raise PredictorError("Token saliency is for text models.")
    ids = predictor.encode([text])
    embed = _embedding_layer(predictor.model)

    # The model embeds (a trimmed copy of) the ids itself; integrate over that embedding output
    # by swapping it in with a forward hook, while the real ids still drive the padding masks.
    captured: list[torch.Tensor] = []
    handle = embed.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        with torch.no_grad():
            predictor.model(ids)
    finally:
        handle.remove()
    embedded = captured[0]
    target, label = _target(predictor, ids, target_class)
    forward, scale = _output_fn(predictor)

    def from_embeddings(emb: torch.Tensor) -> torch.Tensor:
        hook = embed.register_forward_hook(lambda _m, _i, _out: emb)
        try:
            return forward(ids.expand(len(emb), -1))
        finally:
            hook.remove()

    reference = torch.zeros_like(embedded)  # the padding embedding: a text with no words
    attributions = _integrate(from_embeddings, embedded, reference, target, steps)
    per_token = attributions[0].sum(dim=-1).numpy() * scale
    out, ref = _outputs_at(from_embeddings, target, embedded, reference)
    return Explanation(
        kind="text",
        target=label,
        output=_in_units(predictor, out),
        reference_output=_in_units(predictor, ref),
        tokens=shown,
        scores=[float(s) for s in per_token[: len(shown)]],
        unknown=unknown,
        truncated=truncated,
    )


# ---------------------------------------------------------------- images


def explain_image(
    predictor: Predictor, image: Image.Image, target_class: int | None = None, steps: int = STEPS
) -> Explanation:
    """A 0..1 map of where the image drove the explained class, at the model's input size."""
    if predictor.kind != "image":
        raise PredictorError("Saliency maps are for image models.")
    x = predictor.encode([image])
    reference = torch.zeros_like(x)  # the training mean colour, after normalization
    target, label = _target(predictor, x, target_class)
    forward, _ = _output_fn(predictor)
    attributions = _integrate(forward, x, reference, target, steps)[0]
    heat = attributions.abs().sum(dim=0).numpy()
    peak = float(heat.max())
    out, ref = _outputs_at(forward, target, x, reference)
    return Explanation(
        kind="image",
        target=label,
        output=out,
        reference_output=ref,
        saliency=heat / peak if peak > 0 else heat,
    )


def saliency_overlay(image: Image.Image, saliency: np.ndarray, size: int = 256) -> Image.Image:
    """The image (fitted into a `size` square) with the saliency laid over it in red."""
    base = image.convert("RGB")
    base.thumbnail((size, size))
    if min(base.size) < size // 2:  # tiny inputs (8×8 digits) are scaled up to be seen
        factor = size / max(base.size)
        scaled = (max(1, round(base.width * factor)), max(1, round(base.height * factor)))
        base = base.resize(scaled, Image.Resampling.NEAREST)
    heat = Image.fromarray(np.uint8(np.clip(saliency, 0, 1) * 255), mode="L")
    heat = heat.resize(base.size, Image.Resampling.BILINEAR)
    red = Image.new("RGB", base.size, (255, 40, 40))
    # The dimmed image shows through where the model did not look.
    dimmed = Image.blend(base, Image.new("RGB", base.size, (0, 0, 0)), 0.35)
    alpha = heat.point(lambda v: int(v * 0.8))
    return Image.composite(red, dimmed, alpha)


def explain(predictor: Predictor, inputs: object, target_class: int | None = None) -> Explanation:
    """One input of the model's kind: a one-row table, a string, or a PIL image."""
    if predictor.kind == "tabular":
        if not isinstance(inputs, pd.DataFrame):
            raise PredictorError("A table model is explained on a table row (DataFrame).")
        return explain_row(predictor, inputs, target_class)
    if predictor.kind == "text":
        if not isinstance(inputs, str):
            raise PredictorError("A text model is explained on one text.")
        return explain_text(predictor, inputs, target_class)
    if not isinstance(inputs, Image.Image):
        raise PredictorError("An image model is explained on one image (PNG, JPEG, …).")
    return explain_image(predictor, inputs, target_class)
