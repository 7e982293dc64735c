"""The Datasets page's data browser: a version's rows (tables, texts) or images a page at a time,
filtered by label, text and a run's test predictions; members pick rows and set their right
label or leave them out, into the pending-changes tray (components/edit_tray.py).

Speed: the version's rows are read once per version (cached; versions never change) and the
filters are vectorised masks (engine/data/browse.py); a page shows only its own rows, images
by their file path. bench/bench_browser.py measures a page on 100,000 rows and 50,000 images.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components import edit_tray
from db import runs as run_store
from db.records import DatasetRecord
from engine.core.display_text import display_text
from engine.core.errors import DatasetError
from engine.core.run_files import predictions_path
from engine.data.browse import ANY, PAGE_SIZES, RIGHT, WRONG, BrowseFilter, browse
from engine.services import dataset_versions

IMAGES_PER_ROW = 5
RUNS_OFFERED = 50  # the newest completed runs of the dataset, for the prediction filters


@st.cache_data(ttl=3600, show_spinner=False, max_entries=8)
def version_rows(home: str, dataset_id: int, path: str, number: int) -> pd.DataFrame:
    """A version's rows with `row_id` (images: row_id and label). Versions are immutable, so
    the cache never goes stale (keyed by the home and the dataset's stored path too, which
    differ per upload); eight versions at most stay in memory."""
    settings, db = data.get_settings(), data.get_db()
    record = next(r for r in data.datasets() if r.id == dataset_id)
    if record.kind == "image":
        items = dataset_versions.image_items(settings, db, dataset_id, number)
        return pd.DataFrame(items, columns=["row_id", "label"]).astype({"row_id": str})
    frame = dataset_versions.load_version_frame(settings, db, dataset_id, number)
    return frame.astype({"row_id": str})


@st.cache_data(ttl=3600, show_spinner=False, max_entries=8)
def run_predictions(home: str, run_id: int, stamp: float) -> pd.DataFrame | None:
    """A run's test predictions by row id (written at the end of training); `stamp` (the file's
    mtime) keys the cache so a rewritten file is read again."""
    path = predictions_path(data.get_settings(), run_id)
    return pd.read_parquet(path) if path.is_file() else None


def _runs_with_predictions(record: DatasetRecord) -> dict[int, str]:
    settings = data.get_settings()
    runs = run_store.list_runs(
        data.get_db(), statuses=["completed"], dataset_ids=[record.id], limit=RUNS_OFFERED
    )
    return {
        r.id: f"#{r.id} {display_text(r.name or '')}".strip()
        for r in runs
        if predictions_path(settings, r.id).is_file()
    }


def _label_column(record: DatasetRecord) -> str:
    return "label" if record.kind == "image" else str(record.target)


def _search_columns(record: DatasetRecord, frame: pd.DataFrame) -> list[str]:
    if record.kind == "text" and record.schema.get("text_column"):
        return [record.schema["text_column"]]
    if record.kind == "image":
        return []
    # A table: its text-like columns (numbers are filtered by label, not searched).
    return [c for c in frame.columns if c != "row_id" and frame[c].dtype == object]


def _filters(record: DatasetRecord, run_labels: dict[int, str]) -> tuple[BrowseFilter, int | None]:
    classes = [str(c) for c in record.schema.get("classes") or []]
    label_col, search_col, run_col = st.columns(3)
    labels = (
        label_col.multiselect("Label", classes, key=f"db_labels_{record.id}") if classes else []
    )
    search = search_col.text_input(
        "Search",
        key=f"db_search_{record.id}",
        placeholder="file name" if record.kind == "image" else "text in a row",
        help="Rows whose text (or row id, image path) contains this, ignoring case.",
    )
    run_id = run_col.selectbox(
        "Predictions of run",
        list(run_labels),
        index=None,
        format_func=lambda i: run_labels[i],
        placeholder="none" if run_labels else "no completed run with predictions",
        key=f"db_run_{record.id}",
        help="Show a run's prediction beside each of its test rows, and filter by it.",
    )
    filters = BrowseFilter(labels=tuple(labels), search=search)
    if run_id is not None and classes:
        pred_col, right_col, conf_col = st.columns(3)
        predicted = pred_col.multiselect("Predicted", classes, key=f"db_pred_{record.id}")
        correctness = right_col.radio(
            "Prediction",
            [ANY, RIGHT, WRONG],
            horizontal=True,
            key=f"db_right_{record.id}",
            help="right: the run predicted the row's label; wrong: it did not.",
        )
        low, high = conf_col.slider(
            "Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, key=f"db_conf_{record.id}"
        )
        filters = BrowseFilter(
            labels=tuple(labels),
            search=search,
            predicted=tuple(predicted),
            correctness=correctness or ANY,
            min_confidence=low,
            max_confidence=high,
        )
    return filters, run_id


def _image_grid(record: DatasetRecord, rows: pd.DataFrame) -> None:
    from engine.data.image_store import store_for

    # One look-up per image of the page in the dataset's store (a slice of its pack, or a file).
    with store_for(data.get_settings(), record) as store:
        for start in range(0, len(rows), IMAGES_PER_ROW):
            batch = rows.iloc[start : start + IMAGES_PER_ROW]
            for col, row in zip(st.columns(IMAGES_PER_ROW), batch.itertuples(), strict=False):
                caption = f"{row.row_id} · {row.label}"
                if isinstance(getattr(row, "predicted", None), str):
                    caption += f" → {row.predicted} ({row.confidence:.0%})"
                with col:
                    try:
                        image = store.read_bytes(str(row.row_id))
                        st.image(image, caption=caption, width="stretch")
                    except (DatasetError, OSError, KeyError):
                        st.caption(f"{caption} — image file missing")


def _edit_controls(record: DatasetRecord, page_ids: list[str], key: str) -> None:
    """Pick rows of this page, then set their label or leave them out (into the tray)."""
    classes = [str(c) for c in record.schema.get("classes") or []]
    pick_col, label_col, set_col, out_col = st.columns([4, 2, 1, 1], vertical_alignment="bottom")
    picked = pick_col.multiselect(
        "Rows to change",
        page_ids,
        key=f"{key}_rows",
        placeholder="choose rows of this page",
        help="Row ids are stable across versions: the same row keeps its id.",
    )
    edit_tray.label_actions(record.id, picked, classes, (label_col, set_col, out_col), key=key)


def show_data_browser(record: DatasetRecord) -> None:
    """Browse the dataset's latest version a page at a time; members also fix it."""
    st.markdown(
        "**Browse the data**",
        help="Filter by label, text or a run's predictions. Pick rows to set their right label "
        "or leave them out; the changes wait below until you save them as a new version.",
    )
    with data.shown_errors("reading the dataset's rows"):
        latest = edit_tray.latest_number(record.id)
        number = latest
        if latest > 1:
            # ?version=N (the Run page's "Dataset version N" link) opens that version.
            wanted = data.query_int("version")
            choices = list(range(latest, 0, -1))
            number = st.selectbox(
                "Version",
                choices,
                index=choices.index(wanted) if wanted in choices else 0,
                format_func=lambda n: f"version {n}" + (" (latest)" if n == latest else ""),
                key=f"db_version_{record.id}",
                help="Versions never change; an edit makes a new one from the latest.",
            )
        home = str(data.get_settings().home)
        frame = version_rows(home, record.id, record.path, number)
        filters, run_id = _filters(record, _runs_with_predictions(record))
        predictions = None
        if run_id is not None:
            path = predictions_path(data.get_settings(), run_id)
            predictions = run_predictions(home, run_id, path.stat().st_mtime)
        size_col, page_col, info_col = st.columns([1, 1, 3], vertical_alignment="bottom")
        page_size = size_col.selectbox("Per page", PAGE_SIZES, index=1, key=f"db_size_{record.id}")
        page_number = page_col.number_input(
            "Page", min_value=1, value=1, step=1, key=f"db_page_{record.id}"
        )
        shown = browse(
            frame,
            label_column=_label_column(record),
            search_columns=_search_columns(record, frame),
            filters=filters,
            predictions=predictions,
            page=int(page_number) - 1,
            page_size=int(page_size),
        )
        unit = "images" if record.kind == "image" else "rows"
        info_col.caption(
            f"Version {number} · {shown.total:,} of {len(frame):,} {unit} match · page "
            f"{shown.page + 1} of {shown.pages}"
        )
        if shown.total == 0:
            st.info("No rows match these filters; clear one to see more.", icon=":material/info:")
        elif record.kind == "image":
            _image_grid(record, shown.rows)
        else:
            # The row id, the label and the run's prediction first; the inputs after them.
            first = ["row_id", _label_column(record), "predicted", "correct", "confidence", "error"]
            first = [c for c in first if c in shown.rows.columns]
            rows = shown.rows[[*first, *[c for c in shown.rows.columns if c not in first]]]
            st.dataframe(
                data.shown_frame(rows),
                hide_index=True,
                column_config={
                    "confidence": st.column_config.ProgressColumn(
                        format="%.2f", min_value=0, max_value=1
                    )
                },
            )
        if edit_tray.can_edit() and shown.total:
            if number == latest:
                rows = shown.rows["row_id"].astype(str).tolist()
                _edit_controls(record, rows, f"db_{record.id}")
            else:
                st.caption(
                    f"Version {number} is kept as it is; choose the latest version ({latest}) to "
                    f"change labels — a change makes version {latest + 1}."
                )
    edit_tray.show(record, key=f"tray_{record.id}")
