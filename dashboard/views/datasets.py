"""Datasets: upload a table, browse what is stored, look inside one, train on it."""

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboard import auth, data
from dashboard.components.data_browser import show_data_browser
from dashboard.components.image_preview import show_image_dataset
from dashboard.components.text_view import show_text_dataset
from db.records import DatasetRecord
from engine.core.display_text import display_text
from engine.core.errors import DatasetError
from engine.data.columns import profile_table, propose_target, target_concern
from engine.data.file_kind import check_image_zip
from engine.data.tables import IMAGE_ZIP_SUFFIXES, TABLE_SUFFIXES, read_table
from engine.report import charts
from engine.services import dataset_versions
from engine.services import datasets as dataset_actions
from engine.services.permissions import Permission

auth.guard_page()
st.title("Datasets")
db = data.get_db()
settings = data.get_settings()
data.show_flash()


# ---------------------------------------------------------------- upload


def _parsed_table(upload: UploadedFile) -> pd.DataFrame:
    """The upload parsed once per file (not on every rerun of the page); kept for the checks
    of the chosen target while the form is open."""
    cache = st.session_state.setdefault("_upload_table", {})
    if upload.file_id not in cache:
        cache.clear()  # only the current upload matters; drop older parses
        try:
            cache[upload.file_id] = (read_table(upload.getvalue(), upload.name), None)
        except DatasetError as exc:
            cache[upload.file_id] = (None, str(exc))
    frame, error = cache[upload.file_id]
    if error:
        raise DatasetError(error)
    st.caption(
        f"{len(frame):,} rows × {frame.shape[1]:,} columns read from {data.md_text(upload.name)}."
    )
    return frame


def _target_concern(upload: UploadedFile, frame: pd.DataFrame, target: str) -> str | None:
    """Why the chosen target looks wrong (an identifier, a date, free text), once per choice."""
    cache = st.session_state.setdefault("_upload_target_concerns", {})
    key = (upload.file_id, target)
    if key not in cache:
        if any(file_id != upload.file_id for file_id, _ in cache):
            cache.clear()  # a new upload: the old file's answers are of no use
        concern = target_concern(frame, target)
        cache[key] = None if concern is None else concern.message
    return cache[key]


def _check_zip(upload: UploadedFile) -> None:
    """Refuse at once, naming what it is, a file named .zip that is not a ZIP of images (a
    workbook, a picture, a CSV); checked once per file."""
    cache = st.session_state.setdefault("_upload_zip_kind", {})
    if upload.file_id not in cache:
        cache.clear()
        try:
            check_image_zip(upload.getvalue(), upload.name)
            cache[upload.file_id] = None
        except DatasetError as exc:
            cache[upload.file_id] = str(exc)
    if cache[upload.file_id]:
        raise DatasetError(cache[upload.file_id])


def _new_version_key(upload: UploadedFile) -> str:
    return f"upload_new_version_{upload.file_id}"


def _exists(name: str) -> bool:
    return any(d.name == name.strip() for d in data.datasets())


def _new_version_choice(upload: UploadedFile, name: str) -> None:
    """Uploading under a name that is taken: refused, unless the user asks for a new version."""
    if _exists(name):
        st.checkbox(
            f"Add it as the next version of {data.md_text(name.strip())}",
            key=_new_version_key(upload),
            help="Same kind and target as the stored dataset; its earlier versions and the runs "
            "trained on them stay as they are. Without this, choose another name.",
        )


def _add_dataset(
    upload: UploadedFile,
    name: str,
    target: str | None,
    kind: str = "auto",
    text_column: str = "auto",
) -> None:
    actor = auth.require(Permission.UPLOAD)
    if target is None and Path(upload.name).suffix.lower() not in IMAGE_ZIP_SUFFIXES:
        raise DatasetError(
            "Choose the target column (the column the model learns to predict) before adding "
            "the dataset."
        )

    def store(as_name: str | None) -> DatasetRecord:
        return dataset_actions.upload_dataset(
            settings,
            db,
            actor,
            upload.getvalue(),
            filename=upload.name,
            name=as_name,
            target=target,
            kind=kind,
            text_column=None if text_column == "auto" else text_column,
        )

    new_version = st.session_state.get(_new_version_key(upload), False) and _exists(name)
    with st.spinner("Checking and storing the dataset…"):
        if new_version:
            # The same checks as any upload; the file becomes the next version of `name`.
            version = dataset_versions.add_upload_version(settings, db, actor, name, store)
            record = dataset_versions.resolve(db, name)[0]
        else:
            record = store(name)
    data.clear_caches()
    if new_version:
        data.flash(
            f"Added version {version.number} of '{data.md_text(record.name)}': "
            f"{version.n_rows:,} rows ({version.diff.get('added', 0)} added, "
            f"{version.diff.get('removed', 0)} removed, {version.diff.get('relabelled', 0)} "
            f"relabelled from version {version.parent_number})."
        )
        st.session_state["_upload_round"] = st.session_state.get("_upload_round", 0) + 1
        st.session_state["dataset_pick"] = record.id
        st.query_params["dataset"] = str(record.id)
        st.rerun()
    detail = (
        f"{len(record.schema.get('classes', []))} classes"
        if record.task == "classification"
        else "a numeric target"
    )
    rows = "images" if record.kind == "image" else "rows"
    data.flash(
        f"Added dataset '{data.md_text(record.name)}': {record.n_rows:,} {rows}, "
        f"{record.task} with {detail}"
        + (
            f", texts in column '{data.md_text(record.schema['text_column'])}'."
            if record.kind == "text"
            else "."
        )
    )
    # A fresh uploader (new key) so the stored file is not offered again, and show the new set.
    st.session_state["_upload_round"] = st.session_state.get("_upload_round", 0) + 1
    st.session_state["dataset_pick"] = record.id
    st.query_params["dataset"] = str(record.id)
    st.rerun()


with st.container(border=True):
    st.subheader("Add a dataset")
    upload = st.file_uploader(
        "Upload a table, or a ZIP of images",
        type=[s.lstrip(".") for s in TABLE_SUFFIXES + IMAGE_ZIP_SUFFIXES],
        max_upload_size=settings.max_upload_mb,
        key=f"upload_{st.session_state.get('_upload_round', 0)}",
        disabled=not auth.can(Permission.UPLOAD),
        help="CSV, TSV or Parquet with a header row: one row per example, and one column "
        "holding what to predict (the target). Or a ZIP with one folder per class of images "
        "(cats/001.jpg, dogs/002.png; PNG, JPEG, BMP or WebP).",
    )
    if upload is not None and Path(upload.name).suffix.lower() in IMAGE_ZIP_SUFFIXES:
        st.caption(
            f"{data.md_text(upload.name)}: a ZIP of images; each folder is a class. Every image "
            "is checked when you add it."
        )
        with data.shown_errors("storing the images"):
            _check_zip(upload)
            name = st.text_input(
                "Name",
                value=Path(upload.name).stem,
                max_chars=100,
                key=f"upload_name_{upload.file_id}",
                help="How the dataset is listed; must be unique.",
            )
            _new_version_choice(upload, name)
            if st.button("Add dataset", type="primary", icon=":material/upload:"):
                _add_dataset(upload, name, None)
    elif upload is not None:
        with data.shown_errors("reading the upload"):
            frame = _parsed_table(upload)
            columns = list(frame.columns)
            proposed = propose_target(columns)
            name_col, target_col = st.columns(2)
            name = name_col.text_input(
                "Name",
                value=Path(upload.name).stem,
                max_chars=100,
                key=f"upload_name_{upload.file_id}",
                help="How the dataset is listed; must be unique.",
            )
            # No silent default: only a column named like a target is proposed.
            target = target_col.selectbox(
                "Target column",
                columns,
                index=None if proposed is None else columns.index(proposed),
                placeholder="Choose the column to predict",
                key=f"upload_target_{upload.file_id}",
                help="The column the model learns to predict; every other usable column is a "
                "feature. Categories make a classification task, numbers a regression. A "
                "column named target, label, class, y, … is proposed; otherwise choose one.",
            )
            if target is None:
                st.caption(
                    "No column is named like a target (target, label, class, y, …): choose the "
                    "one the model should learn to predict."
                )
            elif target == proposed:
                st.caption(
                    f"{data.md_text(target)} is proposed because it is named like a target; "
                    "choose another if it is not what to predict."
                )
            concern = None if target is None else _target_concern(upload, frame, target)
            if concern:
                st.warning(data.md_message(concern), icon=":material/warning:")
            # --- kind: tabular or text (engine/data/text.py decides for auto)
            kind_col, text_col = st.columns(2)
            kind = kind_col.selectbox(
                "Kind",
                ["auto", "tabular", "text"],
                key=f"upload_kind_{upload.file_id}",
                help="auto: a table whose content is one column of free text (sentences) "
                "becomes a text dataset, any other table a tabular one. Choose text or tabular "
                "to force it.",
            )
            text_column = "auto"
            if kind == "text":
                text_column = text_col.selectbox(
                    "Text column",
                    ["auto", *[c for c in columns if c != target]],
                    key=f"upload_text_column_{upload.file_id}",
                    help="The column holding the texts; auto picks the one with the longest texts.",
                )
            _new_version_choice(upload, name)
            if st.button("Add dataset", type="primary", icon=":material/upload:"):
                _add_dataset(upload, name, target, kind, text_column)


# ---------------------------------------------------------------- list


records = data.datasets()
if not records:
    st.info(
        "No datasets yet. Upload a CSV or Parquet table above — one row per example and one "
        "column to predict — or a ZIP of image folders, or add the demo datasets (iris, wine, "
        "breast cancer, diabetes, support tickets for text, and the digits images).",
        icon=":material/info:",
    )
    if st.button(
        "Add demo datasets", icon=":material/dataset:", disabled=not auth.can(Permission.UPLOAD)
    ):
        with data.shown_errors("adding the demo datasets"):
            actor = auth.require(Permission.UPLOAD)
            with st.spinner("Adding the demo datasets…"):
                added = dataset_actions.add_demo_datasets(settings, db, actor)
            data.clear_caches()
            data.flash(f"Added {', '.join(added) or 'nothing (they were already there)'}.")
            st.rerun()
    st.stop()

st.subheader("Stored datasets")
st.dataframe(
    [
        {
            "id": r.id,
            "name": display_text(r.name),
            "kind": r.kind,
            "task": r.task,
            # An image dataset has images and classes, not a target column or table columns.
            "target": None if r.kind == "image" else display_text(r.target),
            "size": (
                f"{r.n_rows:,} images"
                if r.kind == "image"
                else f"{r.n_rows:,} rows × {r.n_columns:,} columns"
            ),
            "classes": len(r.schema.get("classes") or []) or None,
            "created": data.local_time(r.created_at),
        }
        for r in reversed(records)  # newest first, like the runs
    ],
    hide_index=True,
    column_config={
        "id": st.column_config.NumberColumn("id", format="%d", width="small"),
        "classes": st.column_config.NumberColumn(
            "classes", format="%d", help="Classes to tell apart (none for a regression)"
        ),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    },
)


# ---------------------------------------------------------------- one dataset


by_id = {r.id: r for r in records}
wanted = data.query_int("dataset")
# The URL wins when it names a dataset (a link, or "Train on this" → back); otherwise keep the
# current pick, or show the newest.
if wanted in by_id:
    st.session_state["dataset_pick"] = wanted
elif st.session_state.get("dataset_pick") not in by_id:
    st.session_state["dataset_pick"] = records[-1].id


def _sync_url() -> None:
    st.query_params["dataset"] = str(st.session_state["dataset_pick"])


picked = st.selectbox(
    "Show dataset",
    list(by_id),
    format_func=lambda i: (
        f"{display_text(by_id[i].name)}  ·  {by_id[i].task}  ·  {by_id[i].n_rows:,} rows"
    ),
    key="dataset_pick",
    on_change=_sync_url,
)
record = by_id[picked]

st.divider()
head, action = st.columns([4, 1], vertical_alignment="bottom")
head.subheader(data.md_text(record.name))
size = (
    f"{record.n_rows:,} images in {len(record.schema['classes'])} classes"
    if record.kind == "image"
    else f"target {record.target} · {record.n_rows:,} rows × {record.n_columns:,} columns"
)
head.caption(
    data.md_text(
        f"{record.kind} · {record.task} · {size} · from {record.source_filename} · added "
        f"{data.format_time(record.created_at)}"
    )
)
if action.button(
    "Train on this", type="primary", icon=":material/model_training:", width="stretch"
):
    st.switch_page(data.NEW_RUN_PAGE, query_params={"dataset": str(record.id)})

if record.kind == "image":
    show_image_dataset(record)
    show_data_browser(record)
    st.stop()

dropped = record.schema.get("rows_dropped_missing_target") or 0
if dropped:
    st.caption(f"{dropped:,} rows without a target value were left out at upload.")

preview_col, chart_col = st.columns([3, 2])
with preview_col:
    st.markdown("**First rows**")
    with data.shown_errors("reading the dataset's rows"):
        st.dataframe(data.dataset_preview(record.id, record.path), hide_index=True, height=300)
with chart_col:
    with data.shown_errors("drawing the target chart"):
        if record.task == "classification" and record.schema.get("class_counts"):
            st.markdown("**Class balance**")
            st.plotly_chart(charts.class_balance(record.schema["class_counts"]), height=300)
        else:
            st.markdown("**Target distribution**")
            values = data.dataset_target(record.id, record.path)
            st.plotly_chart(charts.target_histogram(values, name=record.target), height=300)

if record.kind == "text":
    show_text_dataset(record)

st.markdown("**Columns**")
st.caption(
    "How training uses each column: the text column is the input; the others are left out."
    if record.kind == "text"
    else "How training uses each column: numeric and categorical columns are features; "
    "constant, identifier and free-text columns are left out."
)
with data.shown_errors("profiling the dataset"):
    st.dataframe(profile_table(record), hide_index=True)

show_data_browser(record)
