"""Demo datasets from scikit-learn's bundled files and our own generated text (no downloads)."""

from __future__ import annotations

import hashlib

import pandas as pd
from sklearn import datasets as sk_datasets
from sqlalchemy import Engine

from db import datasets as dataset_store
from engine.datasets import store_frame
from engine.demo_text import LABEL_COLUMN, support_tickets
from engine.settings import Settings


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


def register_demo_datasets(settings: Settings, db: Engine) -> list[str]:
    """Register each demo dataset that is not there yet; returns the names added."""
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
    return added
