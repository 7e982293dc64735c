"""Demo datasets from scikit-learn's bundled files and our own generated text (no downloads)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import cache

import numpy as np
import pandas as pd
from PIL import Image
from sklearn import datasets as sk_datasets
from sqlalchemy import Engine

from db import datasets as dataset_store
from engine.core.settings import Settings
from engine.data.datasets import ingest_bytes, store_frame
from engine.data.demo_text import LABEL_COLUMN, support_tickets


def _labelled(bunch, target: str) -> pd.DataFrame:  # noqa: ANN001
    frame = bunch.frame.copy()
    names = list(bunch.target_names)
    frame[target] = [names[i] for i in bunch.target]
    return frame.drop(columns=[c for c in ("target",) if c != target and c in frame])


def demo_frames() -> dict[str, tuple[pd.DataFrame, str]]:
    """name → (frame, target column)."""
    iris = _labelled(sk_datasets.load_iris(as_frame=True), "species")
    wine = _labelled(sk_datasets.load_wine(as_frame=True), "cultivar")
    cancer = _labelled(sk_datasets.load_breast_cancer(as_frame=True), "diagnosis")
    diabetes = sk_datasets.load_diabetes(as_frame=True, scaled=False).frame.rename(
        columns={"target": "disease_progression"}
    )
    return {
        "iris": (iris, "species"),
        "wine": (wine, "cultivar"),
        "breast_cancer": (cancer, "diagnosis"),
        "diabetes": (diabetes, "disease_progression"),
        "support_tickets": (support_tickets(), LABEL_COLUMN),  # text: the ticket's intent
    }


# The run behind "Train a model on a demo dataset" (engine/services/runs.py queue_demo_run):
# handwritten digits, where a small CNN goes from guessing (10 %) to about 97 % validation
# accuracy. Its training loss falls visibly within the first epoch, and 8 epochs take a few
# seconds on two CPU cores: long enough to watch the curves move, done well within a minute.
DEMO_RUN_DATASET = "digits"
# The model is named, not `auto`: the one click must not spend time racing candidates.
DEMO_RUN_CONFIG: dict[str, object] = {"model": "cnn", "epochs": 8, "batch_size": 32}


@cache
def digits_zip() -> bytes:
    """scikit-learn's 1,797 handwritten digits as 8×8 grayscale PNGs in a ZIP of class folders."""
    digits = sk_datasets.load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 → 0..255
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for i, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
            png = io.BytesIO()
            Image.fromarray(image, mode="L").save(png, format="PNG")
            zf.writestr(f"digits/{label}/{i:04d}.png", png.getvalue())
    return buffer.getvalue()


def register_demo_datasets(settings: Settings, db: Engine, *, images: bool = True) -> list[str]:
    """Register each demo dataset that is not there yet; returns the names added.

    images=False skips the digits (about 2 s of image ingest), for callers that only need tables.
    """
    added = []
    for name, (frame, target) in demo_frames().items():
        if dataset_store.dataset_name_exists(db, name):
            continue
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest()
        store_frame(
            settings,
            db,
            frame,
            name=name,
            target=target,
            filename=f"{'seedlab' if name == 'support_tickets' else 'sklearn'}:{name}",
            sha256=digest,
        )
        added.append(name)
    # Images go through the same ZIP ingest as an upload, so the demo exercises it.
    if images and not dataset_store.dataset_name_exists(db, "digits"):
        ingest_bytes(
            settings, db, digits_zip(), filename="sklearn-digits.zip", name="digits", target=None
        )
        added.append("digits")
    return added
