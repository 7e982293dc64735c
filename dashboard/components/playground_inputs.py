"""Playground input widgets generated from what a model was trained on.

Tables: one widget per raw feature column (a slider over the training range, or a select box
of the training categories), each starting at the typical value. Text: a text box. Images: an
upload or a camera photo. Each function returns the input the predictor takes, or None after
saying on the page what is missing.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st
from PIL import Image

from dashboard import data
from engine.ml.image_input import read_image
from engine.ml.predictor import PredictorError
from engine.ml.prep.dates import DateSpec, parse_dates
from engine.ml.prep.tabular import CategoricalSpec, NumericSpec, TabularPreprocessor
from engine.ml.prep.words import WordsSpec

COLUMNS_PER_ROW = 3
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
MISSING_LABEL = "(missing)"


def _slider_step(low: float, high: float) -> float:
    """A round step giving about 100 positions over the range (0.01 for 4.3 … 7.9)."""
    return float(10.0 ** math.floor(math.log10((high - low) / 100)))


def _numeric_widget(spec: NumericSpec, key: str) -> float:
    low, high = spec.minimum, spec.maximum
    if low is None or high is None or not low < high:
        # Checkpoints made before the training range was stored: a free number box.
        return st.number_input(
            spec.name, value=float(spec.median), key=key, help="Starts at the training median."
        )
    help_text = f"Training range {low:g} … {high:g}; starts at the median {spec.median:g}."
    if spec.integer:
        return float(
            st.slider(
                spec.name, int(low), int(high), int(round(spec.median)), key=key, help=help_text
            )
        )
    step = _slider_step(low, high)
    return st.slider(
        spec.name, float(low), float(high), float(spec.median), step=step, key=key, help=help_text
    )


def _categorical_widget(spec: CategoricalSpec, key: str) -> str | None:
    options = list(spec.categories) + ([MISSING_LABEL] if spec.has_missing else [])
    if not options:
        return None
    choice = st.selectbox(
        spec.name,
        options,
        key=key,
        help="The categories seen in training, most frequent first.",
    )
    return None if choice == MISSING_LABEL else choice


def _date_widget(spec: DateSpec, key: str) -> str | None:
    """A date as text: any form the training data used (2024-03-01, 2024-03-01 14:30, 1/3/2024)."""
    start = spec.fill.replace("T00:00:00", "").replace("T", " ")
    span = f"Training dates {spec.minimum[:10]} … {spec.maximum[:10]}; " if spec.minimum else ""
    text = st.text_input(
        spec.name,
        value=start,
        key=key,
        help=f"{span}a date such as 2024-03-01 (or 2024-03-01 14:30). Starts at the median.",
    )
    if text.strip() and parse_dates(pd.Series([text])).isna().all():
        st.warning(
            f"{data.md_text(text)} does not read as a date: write it like 2024-03-01. "
            "The model uses the median training date meanwhile."
        )
        return None
    return text.strip() or None


def table_inputs(preprocessors: list[TabularPreprocessor], key: str) -> pd.DataFrame:
    """One row with a value for every feature any of the models needs (A/B: their union)."""
    specs: dict[str, NumericSpec | CategoricalSpec | DateSpec | WordsSpec] = {}
    for pre in preprocessors:
        for spec in [*pre.numeric, *pre.categorical, *pre.dates, *pre.words]:
            specs.setdefault(spec.name, spec)
    row: dict[str, object] = {}
    names = list(specs)
    for start in range(0, len(names), COLUMNS_PER_ROW):
        columns = st.columns(COLUMNS_PER_ROW)
        for column, name in zip(columns, names[start : start + COLUMNS_PER_ROW], strict=False):
            spec, widget_key = specs[name], f"{key}:{name}"
            with column:
                if isinstance(spec, NumericSpec):
                    row[name] = _numeric_widget(spec, widget_key)
                elif isinstance(spec, DateSpec):
                    row[name] = _date_widget(spec, widget_key)
                elif isinstance(spec, WordsSpec):
                    row[name] = st.text_area(
                        spec.name,
                        key=widget_key,
                        height=80,
                        help="Free text: the model reads its words (the most common "
                        f"{spec.width} of training).",
                    )
                else:
                    row[name] = _categorical_widget(spec, widget_key)
    return pd.DataFrame([row])


def text_input(key: str, example: str = "") -> str | None:
    text = st.text_area(
        "Text",
        value=example,
        key=key,
        height=120,
        placeholder="Type or paste a text for the model to read…",
        help="Starts with the first text of the training dataset when it is still stored.",
    )
    if not text.strip():
        st.warning("The text is empty: type a sentence for the model to read.")
        return None
    return text


def image_input(key: str) -> Image.Image | None:
    source = st.radio(
        "Image from", ["Upload a file", "Camera"], horizontal=True, key=f"{key}:source"
    )
    if source == "Camera":
        upload = st.camera_input("Take a photo", key=f"{key}:camera")
    else:
        upload = st.file_uploader("Image", type=IMAGE_TYPES, key=f"{key}:file")
    if upload is None:
        st.info("Upload an image (PNG, JPEG, GIF, BMP, WebP) or take a photo to see a prediction.")
        return None
    try:
        image = read_image(upload.getvalue(), name=data.md_text(upload.name or "the image"))
    except PredictorError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None
    st.image(image.convert("RGB"), caption="Input", width=min(256, max(64, image.width)))
    return image
