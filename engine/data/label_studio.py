"""Label Studio's JSON task format, both ways. Pure: rows in, tasks out; an export file in,
labels by row id out.

Out: one task per row, `data` holding the row's fields and its Seedlab `row_id`, and the
version's label as a prediction (Label Studio shows it pre-selected; annotators fix it).
In: Label Studio's JSON export (a list of tasks with `annotations`); each task's latest
annotation that was not cancelled gives the row's label (a `choices` result, or a `number`
for regression). Tasks without a `row_id` in their data, or without an annotation, are
skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from engine.core.errors import DatasetError

FROM_NAME = "label"  # the control's name in labeling_config


def _object(kind: str) -> tuple[str, str]:
    """(tag, name) of the object the annotator looks at."""
    return {"image": ("Image", "image"), "text": ("Text", "text")}.get(kind, ("Text", "row"))


def labeling_config(kind: str, classes: list[str], regression: bool = False) -> str:
    """The labeling interface to paste into a Label Studio project for these tasks."""
    tag, name = _object(kind)
    if regression:
        control = f'<Number name="{FROM_NAME}" toName="{name}"/>'
    else:
        choices = "".join(f"<Choice value={quoteattr(c)}/>" for c in classes)
        control = f'<Choices name="{FROM_NAME}" toName="{name}" choice="single">{choices}</Choices>'
    return f'<View><{tag} name="{name}" value="${name}"/>{control}</View>'


def to_tasks(
    rows: Iterable[dict[str, Any]],
    *,
    kind: str,
    label_column: str,
    text_column: str | None = None,
    regression: bool = False,
    model_version: str = "seedlab",
) -> list[dict[str, Any]]:
    """Tasks for Label Studio's import: each row's fields under `data` (plus what the
    labeling config shows: $text, $image or $row), its label as a prediction."""
    _, name = _object(kind)
    tasks = []
    for row in rows:
        values = {k: _plain(v) for k, v in row.items()}
        label = values.pop(label_column)
        data = {**values}
        if kind == "image":
            data["image"] = values["row_id"]
        elif kind == "text" and text_column:
            data["text"] = values.get(text_column)
        else:
            data["row"] = ", ".join(f"{k}={v}" for k, v in values.items() if k != "row_id")
        value = {"number": label} if regression else {"choices": [str(label)]}
        result = {
            "from_name": FROM_NAME,
            "to_name": name,
            "type": "number" if regression else "choices",
            "value": value,
        }
        tasks.append(
            {"data": data, "predictions": [{"model_version": model_version, "result": [result]}]}
        )
    return tasks


def _plain(value: Any) -> Any:  # noqa: ANN401 - a cell
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: JSON has no NaN
        return None
    return value


@dataclass
class ImportedLabels:
    labels: dict[str, Any] = field(default_factory=dict)  # row_id -> label
    without_row_id: int = 0
    without_annotation: int = 0


def _label_of(result: list[dict[str, Any]]) -> Any:  # noqa: ANN401 - a class or a number
    for item in result:
        value = item.get("value") or {}
        if item.get("type") == "choices" and value.get("choices"):
            return value["choices"][0]
        if item.get("type") == "number" and "number" in value:
            return value["number"]
        if item.get("type") == "textarea" and value.get("text"):
            return value["text"][0]
    return None


def read_export(payload: Any) -> ImportedLabels:  # noqa: ANN401 - parsed JSON
    """Labels by row id from Label Studio's JSON export (a list of tasks)."""
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise DatasetError(
            "This is not Label Studio's JSON export (a list of tasks). In Label Studio, use "
            "Export → JSON and give that file."
        )
    out = ImportedLabels()
    for task in payload:
        if not isinstance(task, dict):
            raise DatasetError("Every entry of a Label Studio export is a task (an object).")
        row_id = (task.get("data") or {}).get("row_id")
        if row_id is None:
            out.without_row_id += 1
            continue
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        # The latest annotation wins (several annotators, or one who changed their mind).
        annotations.sort(
            key=lambda a: (
                str(a.get("updated_at") or a.get("created_at") or ""),
                str(a.get("id") or ""),
            )
        )
        label = next(
            (
                x
                for x in (_label_of(a.get("result") or []) for a in reversed(annotations))
                if x is not None
            ),
            None,
        )
        if label is None:
            out.without_annotation += 1
            continue
        out.labels[str(row_id)] = label
    return out
