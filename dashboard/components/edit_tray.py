"""Pending changes to a dataset's labels, kept in the session until saved as a new version.

The data browser (Datasets page) and a run's worst mistakes (Run page) both add to the same
tray, per dataset; "Save as version N+1" hands it to engine/services/dataset_versions.edit,
which checks every label and the user's role again and stores the version (or nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import streamlit as st

from dashboard import auth, data
from db.records import DatasetRecord
from engine.core.display_text import display_text
from engine.services import dataset_versions
from engine.services.permissions import Permission

_TRAYS = "_edit_trays"
# Who may change data: the same right as adding a dataset (dataset_versions.edit checks it).
EDIT_DATA = Permission.UPLOAD


def can_edit() -> bool:
    return auth.can(EDIT_DATA)


def pending(dataset_id: int) -> dict[str, Any]:
    """{"labels": {row_id: label}, "excluded": [row_id, …]} not yet saved for this dataset."""
    trays = st.session_state.setdefault(_TRAYS, {})
    return trays.setdefault(dataset_id, {"labels": {}, "excluded": []})


def relabel(dataset_id: int, row_ids: Iterable[str], label: str | float) -> int:
    """Set `label` on rows (replacing a pending exclusion of them); returns how many."""
    tray = pending(dataset_id)
    count = 0
    for row_id in row_ids:
        tray["labels"][str(row_id)] = label
        if str(row_id) in tray["excluded"]:
            tray["excluded"].remove(str(row_id))
        count += 1
    return count


def exclude(dataset_id: int, row_ids: Iterable[str]) -> int:
    """Leave rows out of the next version (replacing a pending new label of them)."""
    tray = pending(dataset_id)
    count = 0
    for row_id in row_ids:
        tray["labels"].pop(str(row_id), None)
        if str(row_id) not in tray["excluded"]:
            tray["excluded"].append(str(row_id))
        count += 1
    return count


def size(dataset_id: int) -> int:
    tray = pending(dataset_id)
    return len(tray["labels"]) + len(tray["excluded"])


def clear(dataset_id: int) -> None:
    st.session_state.setdefault(_TRAYS, {}).pop(dataset_id, None)


def latest_number(dataset_id: int) -> int:
    versions = dataset_versions.list_versions(data.get_db(), dataset_id)
    return versions[-1].number if versions else 1


def label_actions(
    dataset_id: int, picked: list[str], classes: list[str], columns: Any, *, key: str
) -> None:
    """The right label (a class, or a number for regression), **Set label** and **Leave out**
    for the `picked` rows, in the three `columns`; each click adds to the tray. Shared by the
    data browser and the Run page's worst mistakes."""
    label_col, set_col, out_col = columns
    if classes:
        label = label_col.selectbox("Right label", classes, index=None, key=f"{key}_label")
    else:
        label = label_col.number_input("Right value", value=None, key=f"{key}_label")
    if set_col.button("Set label", icon=":material/edit:", key=f"{key}_set", disabled=not picked):
        if label is None:
            st.warning("Choose the right label first, then click Set label.")
        else:
            relabel(dataset_id, picked, label)
            st.rerun()
    if out_col.button(
        "Leave out", icon=":material/block:", key=f"{key}_exclude", disabled=not picked
    ):
        exclude(dataset_id, picked)
        st.rerun()


def show(record: DatasetRecord, *, key: str) -> None:
    """The tray: what is pending, drop one or all, a note, and "Save as version N+1"."""
    if not can_edit() or size(record.id) == 0:
        return
    tray = pending(record.id)
    with st.container(border=True):
        st.markdown(
            f"**Pending changes to {data.md_text(record.name)}** — {len(tray['labels'])} new "
            f"label(s), {len(tray['excluded'])} row(s) to leave out"
        )
        rows = [
            {"row": row_id, "change": f"label → {display_text(str(label))}"}
            for row_id, label in tray["labels"].items()
        ] + [{"row": row_id, "change": "leave out"} for row_id in tray["excluded"]]
        st.dataframe(rows, hide_index=True, height=min(35 * (len(rows) + 1) + 3, 250))
        number = latest_number(record.id)
        note = st.text_input(
            "Note",
            key=f"{key}_note",
            max_chars=500,
            placeholder="Why: e.g. fixed labels of the worst mistakes of run #12",
            help="Kept with the new version, for whoever trains on it later.",
        )
        save_col, clear_col = st.columns([3, 1])
        if save_col.button(
            f"Save as version {number + 1}",
            type="primary",
            icon=":material/save:",
            key=f"{key}_save",
        ):
            with data.shown_errors("saving the new version"):
                actor = auth.require(EDIT_DATA)
                version = dataset_versions.edit(
                    data.get_settings(),
                    data.get_db(),
                    actor,
                    record.id,
                    relabel=dict(tray["labels"]),
                    exclude=list(tray["excluded"]),
                    note=note.strip(),
                )
                clear(record.id)
                data.clear_caches()
                changes = version.diff
                data.flash(
                    f"Saved version {version.number} of '{data.md_text(record.name)}': "
                    f"{changes.get('relabelled', 0)} relabelled, "
                    f"{changes.get('removed', 0)} left out, {version.n_rows:,} rows in all."
                )
                st.rerun()
        if clear_col.button("Discard", icon=":material/delete:", key=f"{key}_discard"):
            clear(record.id)
            st.rerun()
