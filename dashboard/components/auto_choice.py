"""The Run page's "Model chosen by auto" table: what `model=auto` tried on the validation split,
each candidate's score, steps and seconds, and why it chose (engine/ml/auto_select.py writes
auto_choice.json). Nothing for a run that named its model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from engine.core.formatting import format_duration
from engine.core.run_files import read_auto_choice
from engine.core.settings import Settings


def choice_table(choice: dict) -> pd.DataFrame:
    """One row per candidate, as the page shows it."""
    label = choice.get("objective_label") or choice.get("objective") or "score"
    rows = []
    for trial in choice.get("candidates") or []:
        score = trial.get("score")
        rows.append(
            {
                "candidate": trial.get("label", "?"),
                f"validation {label.removeprefix('val ')}": (
                    "—" if score is None else f"{score:.4f}"
                ),
                "steps": int(trial.get("steps") or 0),
                "time": _seconds(float(trial.get("seconds") or 0.0)),
                "chosen": "✓" if trial.get("chosen") else "",
                "note": trial.get("error") or "",
            }
        )
    return pd.DataFrame(rows)


def _seconds(seconds: float) -> str:
    """Wall-clock time, recorded only: "0.8 s", "2m 05s"."""
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def show(settings: Settings, run_id: int) -> None:
    choice = read_auto_choice(settings, run_id)
    if not choice:
        return
    st.markdown("**Model chosen by auto**")
    st.caption(
        data.md_text(choice.get("reason") or "")
        + " The test split was not used to choose; the seed makes the same choice again."
    )
    st.dataframe(choice_table(choice), hide_index=True, width="stretch")
