"""Dataset versions: list, resolve "NAME@N", read one (tables, text, images), edit (relabel,
exclude) into a new immutable version, diff two. Every version is its base data plus one
cumulative patch (db/models.SqlDatasetVersion), so an edit stores a few KB whatever the size
of the set. Pages and the CLI call these; the runner reads a run's version through
`stored_version`.
"""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from db import datasets as dataset_store
from db.records import DatasetRecord, DatasetVersionRecord
from db.writes import dataset_versions as version_writes
from engine.core.errors import DatasetError
from engine.core.settings import Settings
from engine.data import versions as pure
from engine.data.version_rows import stored_version, version_of, versions_of, view
from engine.services import audit
from engine.services.permissions import Actor, Permission, check

__all__ = [
    "add_upload_version",
    "diff",
    "edit",
    "export_label_studio",
    "export_version",
    "import_label_studio",
    "get_version",
    "image_items",
    "latest",
    "list_versions",
    "load_version_frame",
    "resolve",
    "split_ref",
    "stored_version",
    "view",
]


def _dataset(db: Engine, dataset_id: int) -> DatasetRecord:
    record = dataset_store.get_dataset(db, dataset_id)
    if record is None:
        raise DatasetError(f"No dataset with id {dataset_id}. `seedlab datasets list` shows them.")
    return record


def list_versions(db: Engine, dataset_id: int) -> list[DatasetVersionRecord]:
    """Oldest first; never empty for an existing dataset."""
    return versions_of(db, _dataset(db, dataset_id))


def latest(db: Engine, dataset_id: int) -> DatasetVersionRecord:
    return list_versions(db, dataset_id)[-1]


def get_version(db: Engine, dataset: DatasetRecord, number: int | None) -> DatasetVersionRecord:
    """Version `number` (None: the latest), or a DatasetError naming the versions there are."""
    return version_of(db, dataset, number)


def _find(db: Engine, name: str) -> DatasetRecord | None:
    record = dataset_store.get_dataset_by_name(db, name)
    if record is None and name.isdigit():
        record = dataset_store.get_dataset(db, int(name))
    return record


def split_ref(ref: str) -> tuple[str, int | None]:
    """ "iris@3" -> ("iris", 3); "iris" -> ("iris", None). No lookup (resolve matches an existing
    name with "@" exactly first)."""
    name, at, number = ref.rpartition("@")
    if at and number.isdigit() and name:
        return name, int(number)
    return ref, None


def resolve(db: Engine, ref: str | int) -> tuple[DatasetRecord, DatasetVersionRecord]:
    """A dataset and version from "NAME" (the latest), "NAME@N" or an id; an existing name
    that itself holds "@" is matched exactly first."""
    text = str(ref).strip()
    record = _find(db, text)
    number = None
    if record is None:
        name, number = split_ref(text)
        record = _find(db, name) if number is not None else None
    if record is None:
        names = [d.name for d in dataset_store.list_datasets(db)]
        known = ", ".join(names) if names else "none yet — add one with `seedlab datasets add`"
        raise DatasetError(f"No dataset {text!r}. Datasets: {known}.")
    return record, get_version(db, record, number)


def load_version_frame(
    settings: Settings, db: Engine, dataset_id: int, number: int
) -> pd.DataFrame:
    """Tables and texts: the version's rows with a leading `row_id` column (stable across
    versions). Images: the index (row_id = path in the dataset, label = class name)."""
    dataset = _dataset(db, dataset_id)
    record = view(dataset, get_version(db, dataset, number))
    if dataset.kind == "image":
        index = pure.load_version_index(settings, record)
        classes = list(record.schema["classes"])
        out = index.drop(columns=["label"]).assign(label=[classes[int(i)] for i in index["label"]])
        return out.assign(row_id=out["path"].astype(str).to_numpy())[
            ["row_id", *[c for c in out.columns if c != "row_id"]]
        ].reset_index(drop=True)
    frame = pure.load_version_table(settings, record)
    row_ids = [str(i) for i in frame.index]
    frame = frame.reset_index(drop=True)
    frame.insert(0, "row_id", row_ids)
    return frame


def image_items(
    settings: Settings, db: Engine, dataset_id: int, number: int
) -> list[tuple[str, str]]:
    """Images: (row_id = path inside the dataset, label) of every image in the version."""
    dataset = _dataset(db, dataset_id)
    if dataset.kind != "image":
        raise DatasetError(f"Dataset {dataset.name!r} holds {dataset.kind} rows, not images.")
    record = view(dataset, get_version(db, dataset, number))
    index = pure.load_version_index(settings, record)
    classes = list(record.schema["classes"])
    return [(str(f), classes[int(i)]) for f, i in zip(index["path"], index["label"], strict=True)]


def _version_labels(
    settings: Settings, dataset: DatasetRecord, version: DatasetVersionRecord
) -> pd.Series:
    record = view(dataset, version)
    return pure.patched_labels(pure.base_labels(settings, record), version.patch)


def edit(
    settings: Settings,
    db: Engine,
    actor: Actor,
    dataset_id: int,
    *,
    relabel: dict[str, str | float],
    exclude: list[str],
    note: str,
) -> DatasetVersionRecord:
    """Version latest+1 from the latest with these rows relabelled and excluded. Refuses (a
    DatasetError, nothing stored) an unknown row, a label that is not a known class (or not a
    number for regression), and a change that changes nothing. Viewers may not edit."""
    check(actor, Permission.UPLOAD)
    dataset = _dataset(db, dataset_id)
    parent = latest(db, dataset_id)
    record = view(dataset, parent)
    base = pure.base_labels(settings, record)
    labels = dict(parent.patch.get("labels") or {})
    excluded = set(parent.patch.get("excluded") or [])
    requested_exclusions = {str(r).strip() for r in exclude}

    def known(row_id: str) -> None:
        if row_id not in base.index:
            hint = "a row number from 0" if dataset.kind != "image" else "an image's path"
            raise DatasetError(
                f"Dataset {dataset.name!r} has no row {row_id!r} (row ids are {hint}, as "
                "the data browser and `seedlab datasets show` list them)."
            )

    for raw_id, value in relabel.items():
        row_id = str(raw_id).strip()
        known(row_id)
        if row_id in excluded and row_id not in requested_exclusions:
            raise DatasetError(
                f"Row {row_id!r} is excluded in version {parent.number}; it has no label to set."
            )
        label = pure.check_label(value, record.schema)
        if str(base[row_id]) == str(label) or (
            isinstance(label, float) and float(base[row_id]) == label
        ):
            labels.pop(row_id, None)  # back to the base's label: nothing to patch
        else:
            labels[row_id] = label
    for row_id in requested_exclusions:
        known(row_id)
        excluded.add(row_id)
        labels.pop(row_id, None)
    patch = pure.canonical_patch(labels, excluded)
    if patch == pure.canonical_patch(
        dict(parent.patch.get("labels") or {}), parent.patch.get("excluded") or []
    ):
        raise DatasetError(
            f"These changes leave version {parent.number} of {dataset.name!r} as it is "
            "(the labels are already set, the rows already excluded); no version was made."
        )
    new_labels = pure.patched_labels(base, patch)
    change = pure.label_diff(pure.patched_labels(base, parent.patch), new_labels)
    base_sha = parent.base_sha256 or dataset.sha256
    try:
        if parent.id == 0:
            # A dataset stored without its version row: keep its version 1 first.
            parent = version_writes.add_version(
                db,
                **{
                    k: getattr(parent, k)
                    for k in (
                        "dataset_id",
                        "parent_number",
                        "digest",
                        "note",
                        "created_by",
                        "n_rows",
                        "class_counts",
                        "diff",
                        "base_path",
                        "patch",
                    )
                },
            )
        version = version_writes.add_version(
            db,
            dataset_id=dataset.id,
            parent_number=parent.number,
            digest=version_writes.version_digest(base_sha, patch),
            note=note.strip(),
            created_by=actor.name,
            n_rows=len(new_labels),
            class_counts=pure.class_counts(new_labels, record.schema),
            diff={k: change[k] for k in ("added", "removed", "relabelled")},
            base_path=parent.base_path,
            patch=patch,
            base_schema=parent.base_schema,
            base_sha256=parent.base_sha256,
        )
    except version_writes.VersionConflict as exc:
        raise DatasetError(str(exc)) from None
    audit.record(
        db,
        actor,
        "edit",
        f"dataset {dataset.id} {dataset.name}",
        f"version {version.number}: {change['relabelled']} relabelled, "
        f"{change['removed']} excluded, {change['added']} restored"
        + (f"; {version.note}" if version.note else ""),
    )
    return version


def diff(
    db: Engine, dataset_id: int, a: int, b: int, settings: Settings | None = None
) -> dict[str, Any]:
    """Rows added, removed and relabelled from version `a` to `b` (counts, and the first row
    ids of each). Versions of one base compare by their patches; others read both bases."""
    dataset = _dataset(db, dataset_id)
    old, new = get_version(db, dataset, a), get_version(db, dataset, b)
    if settings is None:
        settings = Settings.from_env()
    if old.base_path == new.base_path:
        # Same base: only rows a patch touches can differ, so read just their base labels.
        base = pure.base_labels(settings, view(dataset, old))
        touched = (
            set(old.patch.get("labels") or {})
            | set(new.patch.get("labels") or {})
            | set(old.patch.get("excluded") or [])
            | set(new.patch.get("excluded") or [])
        )
        base = base[base.index.isin(touched)]
        out = pure.label_diff(
            pure.patched_labels(base, old.patch), pure.patched_labels(base, new.patch)
        )
    else:
        out = pure.label_diff(
            _version_labels(settings, dataset, old), _version_labels(settings, dataset, new)
        )
    return {"dataset": dataset.name, "from": a, "to": b, **out}


def add_upload_version(
    settings: Settings,
    db: Engine,
    actor: Actor,
    name: str,
    store: Callable[[str], DatasetRecord],
) -> DatasetVersionRecord:
    """A new upload under the existing name `name`, as its version latest+1 (the user asked for
    a new version). `store(temp_name)` ingests the file as usual under a temporary name; its
    files become the new version's base and the temporary row goes. Refused (nothing kept)
    when the new data is of another kind or predicts another target."""
    from db.writes import datasets as dataset_writes
    from engine.data.datasets import delete_dataset as delete_stored

    check(actor, Permission.UPLOAD)
    dataset = dataset_store.get_dataset_by_name(db, name)
    if dataset is None:
        raise DatasetError(
            f"No dataset {name!r} to add a version to. Leave out --new-version to add it as a "
            "new dataset."
        )
    parent = latest(db, dataset.id)
    staged = store(f"{name[:60]}.new-version-{uuid.uuid4().hex[:12]}")
    try:
        if (staged.kind, staged.target) != (dataset.kind, dataset.target):
            raise DatasetError(
                f"The new file is a {staged.kind} dataset predicting {staged.target!r}; "
                f"{dataset.name!r} is {dataset.kind} predicting {dataset.target!r}. A version "
                "must keep the kind and the target: upload it under a new name instead."
            )
        old = _version_labels(settings, dataset, parent)
        new = pure.base_labels(settings, staged)
        change = pure.label_diff(old, new)
        version = version_writes.add_version(
            db,
            dataset_id=dataset.id,
            parent_number=parent.number,
            digest=version_writes.version_digest(staged.sha256, pure.empty_patch()),
            note=f"new upload: {staged.source_filename}",
            created_by=actor.name,
            n_rows=staged.n_rows,
            class_counts=dict(staged.schema.get("class_counts") or {}),
            diff={k: change[k] for k in ("added", "removed", "relabelled")},
            base_path=staged.path,
            patch=pure.empty_patch(),
            base_schema=staged.schema,
            base_sha256=staged.sha256,
        )
    except BaseException:
        delete_stored(settings, db, staged)  # its files and row: nothing kept
        raise
    dataset_writes.delete_dataset(db, staged.id)  # the row only: its files are the version's
    audit.record(
        db,
        actor,
        "upload",
        f"dataset {dataset.id} {dataset.name}",
        f"version {version.number} from {staged.source_filename}",
    )
    return version


EXPORT_SUFFIXES = (".csv", ".parquet", ".zip")


def export_version(
    settings: Settings, db: Engine, dataset_id: int, number: int | None, output: Path
) -> Path:
    """Write a version to `output`: CSV or Parquet (tables, texts; by the suffix, with the
    `row_id` column), a ZIP of images in one folder per class (images), or Label Studio JSON
    tasks (.json, any kind). Atomic."""
    from engine.core.atomic import atomic_path
    from engine.data.image_store import store_for

    if output.suffix.lower() == ".json":
        return export_label_studio(settings, db, dataset_id, number, output)
    dataset = _dataset(db, dataset_id)
    version = get_version(db, dataset, number)
    suffix = output.suffix.lower()
    wanted = ".zip" if dataset.kind == "image" else (".csv", ".parquet")
    if suffix not in (wanted if isinstance(wanted, tuple) else (wanted,)):
        shown = "a .zip file" if dataset.kind == "image" else "a .csv or .parquet file"
        shown += " (or .json: Label Studio tasks)"
        raise DatasetError(
            f"{dataset.name!r} holds {dataset.kind} data: export it to {shown} "
            f"(got {output.name!r})."
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp:
        if dataset.kind == "image":
            store = store_for(settings, view(dataset, version))
            taken: set[str] = set()
            with store, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
                for row_id, label in image_items(settings, db, dataset_id, version.number):
                    # label/<file name>: the layout an upload takes back (one folder per class);
                    # a relabelled image whose name is taken there keeps its whole path.
                    member = f"{label}/{PurePosixPath(row_id).name}"
                    if member in taken:
                        member = f"{label}/{row_id.replace('/', '_')}"
                    taken.add(member)
                    archive.writestr(member, store.read_bytes(row_id))
        else:
            frame = load_version_frame(settings, db, dataset_id, version.number)
            if suffix == ".csv":
                frame.to_csv(tmp, index=False)
            else:
                frame.to_parquet(tmp, index=False)
    return output


def export_label_studio(
    settings: Settings, db: Engine, dataset_id: int, number: int | None, output: Path
) -> Path:
    """A version as Label Studio JSON tasks (import them into a Label Studio project; the
    labeling interface is written beside it, as <output>.config.xml)."""
    from engine.core.atomic import write_json_atomic
    from engine.data.label_studio import labeling_config, to_tasks

    dataset = _dataset(db, dataset_id)
    version = get_version(db, dataset, number)
    schema = version.base_schema or dataset.schema
    frame = load_version_frame(settings, db, dataset_id, version.number)
    regression = schema.get("task") == "regression"
    label_column = "label" if dataset.kind == "image" else dataset.target
    if dataset.kind == "image":
        frame = frame[["row_id", "label"]]
    tasks = to_tasks(
        frame.to_dict(orient="records"),
        kind=dataset.kind,
        label_column=label_column,
        text_column=schema.get("text_column"),
        regression=regression,
        model_version=f"seedlab {dataset.name}@{version.number}",
    )
    write_json_atomic(output, tasks)
    config = labeling_config(dataset.kind, list(schema.get("classes") or []), regression)
    output.with_name(output.name + ".config.xml").write_text(config)
    return output


def import_label_studio(
    settings: Settings, db: Engine, actor: Actor, dataset_id: int, payload: Any, note: str = ""
) -> tuple[DatasetVersionRecord, dict[str, int]]:
    """Labels from Label Studio's JSON export as the next version (only rows whose label
    changed are patched). Returns the version and what was skipped."""
    from engine.data.label_studio import read_export

    imported = read_export(payload)
    current = latest(db, dataset_id)
    excluded = set(current.patch.get("excluded") or [])
    labels = {k: v for k, v in imported.labels.items() if k not in excluded}
    skipped = {
        "without_row_id": imported.without_row_id,
        "without_annotation": imported.without_annotation,
        "excluded": len(imported.labels) - len(labels),
    }
    if not labels:
        raise DatasetError(
            "The file has no annotated task with a Seedlab row_id in its data; export tasks "
            "with `seedlab datasets export NAME --output tasks.json`, label them in Label "
            "Studio, then import its JSON export."
        )
    version = edit(
        settings,
        db,
        actor,
        dataset_id,
        relabel=labels,
        exclude=[],
        note=note or "labels from Label Studio",
    )
    return version, skipped
