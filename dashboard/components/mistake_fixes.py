"""The Run page's side of fixing data: set the right label of a worst mistake or leave the row
out (into the dataset's pending-changes tray, components/edit_tray.py), "Retrain on version N"
once a newer version exists, and the link to Compare a retrained run with the run it redoes."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import auth, data
from dashboard.components import edit_tray
from db.records import DatasetRecord, RunRecord
from engine.services.permissions import Permission


def _dataset(run: RunRecord) -> DatasetRecord | None:
    return next((r for r in data.datasets() if r.id == run.dataset_id), None)


def fix_mistakes(run: RunRecord, report: dict[str, Any]) -> None:
    """Below the worst mistakes: pick some, then "Use the predicted label", "Set label" or
    "Leave out"; the tray and "Save as version N+1" follow. Members and admins only."""
    record = _dataset(run)
    rows = [m for m in report.get("worst_mistakes") or [] if m.get("row_id") is not None]
    if record is None or not rows or not edit_tray.can_edit():
        return
    by_id = {str(m["row_id"]): m for m in rows}
    key = f"fix_{run.id}"

    def describe(row_id: str) -> str:
        m = by_id[row_id]
        return f"row {row_id}: labelled {m['true']}, predicted {m['predicted']}"

    st.markdown(
        "**Fix the data**",
        help="A confident mistake is often a wrong label. Set the right one, or leave the row "
        "out; the changes wait in the tray until you save them as a new version of "
        f"{record.name}.",
    )
    picked = st.multiselect("Mistakes to fix", list(by_id), format_func=describe, key=f"{key}_rows")
    classes = [str(c) for c in record.schema.get("classes") or []]
    use_col, label_col, set_col, out_col = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    if classes and use_col.button(
        "Use the predicted label",
        icon=":material/check:",
        key=f"{key}_use",
        disabled=not picked,
        help="The model was right and the label wrong: take its prediction as the label.",
    ):
        for row_id in picked:
            edit_tray.relabel(record.id, [row_id], by_id[row_id]["predicted"])
        st.rerun()
    edit_tray.label_actions(record.id, picked, classes, (label_col, set_col, out_col), key=key)
    edit_tray.show(record, key=f"{key}_tray")


def retrain_actions(run: RunRecord) -> None:
    """ "Retrain on version N" when the run's dataset has a newer version than the one it
    trained on; on a run that retrains another on a different version, a link to Compare."""
    record = _dataset(run)
    if record is None or run.source == "sdk":
        return
    trained_on = run.dataset_version or 1
    latest = edit_tray.latest_number(record.id)
    if latest > trained_on and st.button(
        f"Retrain on version {latest}",
        icon=":material/replay:",
        help=f"Open New run with this run's settings on version {latest} of {record.name} "
        f"(this run trained on version {trained_on}).",
        disabled=not auth.can(Permission.LAUNCH),
        key=f"retrain_{run.id}",
    ):
        st.switch_page(
            data.NEW_RUN_PAGE, query_params={"clone": str(run.id), "version": str(latest)}
        )
    if run.parent_run_id is not None:
        st.page_link(
            data.COMPARE_PAGE,
            label=f"Compare with #{run.parent_run_id}",
            icon=":material/compare_arrows:",
            query_params={"runs": f"{run.parent_run_id},{run.id}"},
        )
