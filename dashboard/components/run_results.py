"""A run's result, as the Run page and a shared run's page show it: the verdict with each
warning and what to do, the baselines, the headline test metrics as cards, and which curves
it has."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data
from db.records import RunRecord
from engine.core import verdicts
from engine.core.catalog import EPOCH_METRICS, HEADLINE_METRIC, TEST_METRICS, metric_label
from engine.core.epochs import EPOCH_KEY
from engine.core.formatting import format_metric

CARDS_PER_ROW = 3


def verdict(run: RunRecord) -> None:
    """The verdict: one line against the baselines, then each warning with what to do
    (engine/ml/verdict.py), then the baselines folded away. Nothing for a run without one."""
    found = run.verdict
    if not isinstance(found, dict):
        return
    st.markdown(f"**Verdict:** {data.md_message(found.get('summary') or '')}")
    for warning in verdicts.warnings_of(found):
        label = verdicts.warning_label(warning.get("code", ""))
        st.warning(
            data.md_message(
                f"**{label[:1].upper() + label[1:]}.** {warning.get('message', '')}  \n"
                f"*What to do:* {warning.get('advice', '')}"
            ),
            icon=":material/warning:",
        )
    _baselines(found.get("baseline") or {})


def _baselines(baseline: dict[str, Any]) -> None:
    """The baselines' test scores beside the run's (headline metrics), folded away."""
    rows = [b for b in (baseline.get("trivial"), baseline.get("classical")) if b]
    if not rows:
        return
    with st.expander("Baselines on the same test rows"):
        for b in rows:
            shown = [
                f"{metric_label(k)} {format_metric(k, v)}"
                for k, v in (b.get("metrics") or {}).items()
                if k in ("test_accuracy", "test_balanced_accuracy", "test_rmse", "test_r2")
            ]
            fitted = f", fitted on {b['train_rows']:,} training rows" if b.get("train_rows") else ""
            st.markdown(data.md_message(f"**{b.get('name', '?')}**{fitted}: " + ", ".join(shown)))
        if baseline.get("classical_note"):
            st.caption(data.md_message(baseline["classical_note"]))


def result_cards(run: RunRecord, task: str, *, other_test_metrics: bool = False) -> None:
    """Up to six test metrics as cards, the headline first (accuracy as 86.4 %, a loss as is);
    `other_test_metrics`: also the run's test_* keys the task does not list (a share link's
    page, which has no other place to show them)."""
    headline, _ = HEADLINE_METRIC.get(task, (None, True))
    keys = [k for k in TEST_METRICS.get(task, []) if k in run.summary]
    if other_test_metrics:
        keys += sorted(k for k in run.summary if k.startswith("test_") and k not in keys)
    keys.sort(key=lambda k: k != headline)  # the metric a run is judged by comes first
    if not keys:
        return
    # Three cards a row, labelled without the "test " every one of them shares (the caption
    # says it once): six in a row cut "test balanced accuracy" to "test balanced ac…".
    st.caption("Scores on the test split: rows the model never saw while training.")
    keys = keys[:6]
    for start in range(0, len(keys), CARDS_PER_ROW):
        row = keys[start : start + CARDS_PER_ROW]
        for col, key in zip(st.columns(CARDS_PER_ROW), row, strict=False):
            label = metric_label(key)
            shown = format_metric(key, run.last(key))
            col.metric(label.removeprefix("test "), shown, help=label, border=True)


def curve_keys(run: RunRecord, task: str) -> tuple[list[str], list[str]]:
    """The run's curves as (loss keys, quality keys): its task's epoch metrics, or for the
    team's own code (recipes, the SDK) every key it logged but system metrics (drawn apart),
    test_ ones (results, not curves), the learning rate and the epoch counter."""
    keys = EPOCH_METRICS.get(task, [])
    if run.source != "builtin":
        skip = ("sys/", "test_")
        keys = [
            k for k in sorted(run.summary) if not k.startswith(skip) and k not in ("lr", EPOCH_KEY)
        ]
    loss = [k for k in keys if k.endswith("_loss") or k == "loss"]
    return loss, [k for k in keys if k not in loss]
