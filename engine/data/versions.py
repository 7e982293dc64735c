"""A dataset version read back: its base data (the stored file or image folder) with its patch
applied — relabels and exclusions keyed by stable row ids. Pure: no database; the services
(engine/services/dataset_versions.py) give it what the version row holds.

Row ids: a table's 0-based row position in its base file, as text ("0", "1", …); an image's
path inside the dataset ("cat/001.png").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data.columns import class_labels
from engine.data.image_store import load_index
from engine.data.stored import load_frame


@dataclass(frozen=True)
class VersionedDataset:
    """A StoredDataset (engine/data/stored.py) for one version: `path` is the version's base,
    `patch` what to change in it. What the runner hands the pipeline."""

    id: int
    name: str
    kind: str
    schema: dict[str, Any]
    path: str
    version: int = 1
    patch: dict[str, Any] = field(default_factory=dict)


def empty_patch() -> dict[str, Any]:
    return {"excluded": [], "labels": {}}


def is_empty(patch: dict[str, Any] | None) -> bool:
    return not patch or (not patch.get("labels") and not patch.get("excluded"))


def canonical_patch(labels: dict[str, Any], excluded: set[str] | list[str]) -> dict[str, Any]:
    """Sorted, so equal content gives equal JSON and equal digests."""
    return {
        "excluded": sorted(excluded, key=_row_sort_key),
        "labels": {k: labels[k] for k in sorted(labels, key=_row_sort_key)},
    }


def _row_sort_key(row_id: str) -> tuple[int, int, str]:
    return (0, int(row_id), "") if row_id.isdigit() else (1, 0, row_id)


def check_label(value: Any, schema: dict[str, Any]) -> str | float:  # noqa: ANN401 - user input
    """The label as stored in a patch (a class name, or a number for regression), or a
    DatasetError saying why it is refused."""
    if schema.get("task") == "regression":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{value!r} is not a number, and the target {schema.get('target')!r} is a "
                "number to predict (regression). Give a number such as 3.5."
            ) from None
        if not math.isfinite(number):
            raise DatasetError(f"{value!r} is not a finite number. Give a number such as 3.5.")
        return number
    classes = [str(c) for c in schema.get("classes") or []]
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit() and text[:-2] in classes:
        text = text[:-2]  # 1.0 and 1 are one class (engine/data/columns.class_labels)
    if text not in classes:
        shown = ", ".join(classes[:20]) + (" …" if len(classes) > 20 else "")
        raise DatasetError(
            f"{value!r} is not a class of this dataset. Known classes: {shown}. "
            "Pick one of them (a new class needs a new upload)."
        )
    return text


def base_labels(settings: Settings, record: Any) -> pd.Series:  # noqa: ANN401 - StoredDataset
    """The base's labels by row id, as text for classes (numbers for regression)."""
    if record.kind == "image":
        index = load_index(settings, record)
        classes = list(record.schema["classes"])
        return pd.Series(
            [classes[int(i)] for i in index["label"]], index=index["path"].astype(str).tolist()
        )
    target = record.schema["target"]
    values = load_frame(settings, record, columns=[target])[target]
    if record.schema.get("task") != "regression":
        values = class_labels(values)
    return pd.Series(values.to_numpy(), index=[str(i) for i in range(len(values))])


def patched_labels(base: pd.Series, patch: dict[str, Any]) -> pd.Series:
    """Labels by row id after the patch (excluded rows gone)."""
    out = base.copy()
    labels = patch.get("labels") or {}
    if labels:
        keys = [k for k in labels if k in out.index]
        out.loc[keys] = [labels[k] for k in keys]
    excluded = patch.get("excluded") or []
    return out.drop(index=[e for e in excluded if e in out.index]) if excluded else out


def label_diff(old: pd.Series, new: pd.Series, limit: int = 200) -> dict[str, Any]:
    """Rows added, removed, relabelled from `old` to `new` (labels by row id); the first
    `limit` row ids of each, for display."""
    added = new.index.difference(old.index)
    removed = old.index.difference(new.index)
    common = new.index.intersection(old.index)
    # Vectorised: a per-row lookup would take seconds on 100,000 rows.
    differs = old.loc[common].astype(str).to_numpy() != new.loc[common].astype(str).to_numpy()
    changed = common[differs]
    return {
        "added": len(added),
        "removed": len(removed),
        "relabelled": len(changed),
        "added_rows": [str(r) for r in added[:limit]],
        "removed_rows": [str(r) for r in removed[:limit]],
        "relabelled_rows": [
            {"row_id": str(r), "from": _plain(old[r]), "to": _plain(new[r])}
            for r in changed[:limit]
        ],
    }


def _plain(value: Any) -> Any:  # noqa: ANN401 - a label
    return value.item() if hasattr(value, "item") else value


def class_counts(labels: pd.Series, schema: dict[str, Any]) -> dict[str, int]:
    if schema.get("task") == "regression":
        return {}
    counts = labels.astype(str).value_counts()
    return {str(c): int(counts.get(str(c), 0)) for c in schema.get("classes") or []}


def apply_to_frame(frame: pd.DataFrame, patch: dict[str, Any], target: str) -> pd.DataFrame:
    """The base table (its index = row positions) with relabels set and exclusions dropped;
    the index keeps the base positions, so row ids stay what they were."""
    if is_empty(patch):
        return frame
    out = frame.copy()
    labels = patch.get("labels") or {}
    if labels:
        positions = [int(k) for k in labels]
        values = list(labels.values())
        if pd.api.types.is_numeric_dtype(out[target].dtype):
            values = [float(v) for v in values]
            if pd.api.types.is_integer_dtype(out[target].dtype) and all(
                v.is_integer() for v in values
            ):
                values = [int(v) for v in values]
            else:
                out[target] = out[target].astype("float64")
        else:
            out[target] = out[target].astype(object)
        out.loc[out.index[positions], target] = values
    excluded = [int(e) for e in patch.get("excluded") or []]
    if excluded:
        out = out.drop(index=out.index[excluded])
    return out


def apply_to_index(index: pd.DataFrame, patch: dict[str, Any], classes: list[str]) -> pd.DataFrame:
    """An image index (file, label as a class position) with the patch applied; the pandas
    index keeps the base positions (they address the image arrays)."""
    if is_empty(patch):
        return index
    out = index.copy()
    labels = patch.get("labels") or {}
    if labels:
        where = {f: i for i, f in enumerate(out["path"].astype(str))}
        column = out.columns.get_loc("label")
        for row_id, label in labels.items():
            if row_id in where:
                out.iat[where[row_id], column] = classes.index(str(label))
    excluded = set(patch.get("excluded") or [])
    if excluded:
        out = out[~out["path"].astype(str).isin(excluded)]
    return out


def load_version_table(settings: Settings, record: Any) -> pd.DataFrame:  # noqa: ANN401
    """A table or text version for training: base rows with the patch applied (no row_id column,
    the index holds the base positions)."""
    frame = load_frame(settings, record)
    return apply_to_frame(frame, getattr(record, "patch", None) or {}, record.schema["target"])


def load_version_index(settings: Settings, record: Any) -> pd.DataFrame:  # noqa: ANN401
    return apply_to_index(
        load_index(settings, record),
        getattr(record, "patch", None) or {},
        list(record.schema["classes"]),
    )
