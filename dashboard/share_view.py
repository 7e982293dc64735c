"""The share view: what a read-only share link (`/?share=TOKEN`) opens, and nothing else.

app.py calls `is_share_session()` before the login gate; when it holds, `show()` draws this view
and app.py stops: no st.navigation (so no sidebar, no other page, whatever path the URL names:
/runs?share=T draws this same view), no project picker, no login, and a logged-in visitor's
cookie changes nothing. Once a session has seen a token it stays a share session
(session_state), so dropping `share` from a replayed message's query does not reach the pages
either (a new visit without the token is a new session, which meets the login gate).

What is drawn comes from the link's record (engine/services/share_links.py), resolved again at
every click (a revoked or expired link stops at the next one), never from query parameters:
`?run=`, `?runs=`, `?model=` are ignored. Only this module's widgets are drawn, so a replayed
widget message of another page (its key set in session_state) meets no widget and does nothing.
Nothing here acts: no cancel, delete, pin, register, export or clone; a shared Playground
predicts, at most SEEDLAB_SHARE_PREDICT_PER_MIN times a minute per link.

The opening is counted once per session (the link's `opens` and `last opened`), not per click.
A run still training is shown as it stood at the visitor's last click or reload: no live
refresh, whose fragment reruns would skip the token's check at every click.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy import Engine

from dashboard import data
from dashboard.components import report_section, run_results
from db import registry, run_query
from db import runs as run_store
from db.records import RunRecord
from db.share_links import ShareLinkRecord
from engine.core.catalog import metric_label
from engine.core.epochs import EPOCH_KEY
from engine.core.formatting import format_duration, format_metric
from engine.core.run_files import checkpoint_path, read_report
from engine.report import charts, compare_charts
from engine.services import share_links as sharing
from engine.services.curves import drawn_history

QUERY_KEY = "share"
# The token this session was opened with: it stays a share session for its whole life.
_TOKEN = "_seedlab_share_token"
# The link whose opening this session has counted already.
_COUNTED = "_seedlab_share_counted"


def is_share_session() -> bool:
    """Whether this session shows a share link: its URL has ?share=, or it had one before."""
    token = st.query_params.get(QUERY_KEY)
    if token:
        st.session_state[_TOKEN] = token
    return bool(st.session_state.get(_TOKEN))


def show() -> None:
    """The shared view of this session's token, or the sentence that says why it opens nothing."""
    db = data.get_db()
    try:
        link = sharing.resolve(db, st.session_state.get(_TOKEN))
    except sharing.LinkRefused as exc:
        st.title("Seedlab")
        st.error(str(exc), icon=":material/link_off:")
        return
    if st.session_state.get(_COUNTED) != link.id:
        sharing.opened(db, link)
        st.session_state[_COUNTED] = link.id
    with data.shown_errors("showing the shared view"):
        {"run": _run_view, "compare": _compare_view, "model": _model_view}[link.kind](db, link)
    st.caption(
        f"A read-only view shared from Seedlab by {data.md_text(link.created_by)}; this link "
        f"{sharing.expiry_text(link.expires_at)}."
    )


# ---------------------------------------------------------------- a run


def _task(run: RunRecord) -> str:
    dataset = next((d for d in data.datasets() if d.id == run.dataset_id), None)
    return data.effective_task(run, dataset)


def _run_view(db: Engine, link: ShareLinkRecord) -> None:
    run = run_store.get_run(db, int(link.target["run"]))
    if run is None:
        st.title("Seedlab")
        st.warning("The shared run no longer exists: it was deleted after the link was made.")
        return
    task = _task(run)
    st.title(f"#{run.id} · {data.md_text(run.name)}")
    with st.container(horizontal=True, vertical_alignment="center"):
        data.status_badge(run.status, run.verdict)
        st.caption(data.md_text(" · ".join(_facts(run, task))))
    if run.status == "failed":
        st.error(data.md_message(run.error or "The run failed."), icon=":material/error:")
    elif run.status == "completed":
        run_results.verdict(run)
        run_results.result_cards(run, task, other_test_metrics=True)
    st.subheader("Curves")
    _curves(db, run, task)
    report = read_report(data.get_settings(), run.id)
    if isinstance(report, dict) and (report.get("metrics") or report.get("task")):
        st.subheader("Evaluation")
        _evaluation(run, report)


def _facts(run: RunRecord, task: str) -> list[str]:
    facts = [f"dataset {run.dataset_name}", task] if run.dataset_name else []
    facts.append(f"created {data.format_time(run.created_at)}")
    if run.duration_s is not None:
        facts.append(f"took {format_duration(run.duration_s)}")
    return facts


def _curves(db: Engine, run: RunRecord, task: str) -> None:
    loss_keys, quality_keys = run_results.curve_keys(run, task)
    history = drawn_history(
        db, [run.id], [*loss_keys, *quality_keys, EPOCH_KEY], max_points=charts.MAX_POINTS_PER_TRACE
    )
    drawn = set(history["key"]) if not history.empty else set()
    loss_keys = [k for k in loss_keys if k in drawn]
    quality_keys = [k for k in quality_keys if k in drawn]
    if not loss_keys and not quality_keys:
        st.info("No curves yet.", icon=":material/timeline:")
        return
    loss_col, quality_col = st.columns(2)
    if loss_keys:
        with loss_col:
            st.markdown("**Loss**")
            st.plotly_chart(charts.metric_curves(history, loss_keys), key="share_curve_loss")
    if quality_keys:
        with quality_col:
            st.markdown("**" + ", ".join(metric_label(k) for k in quality_keys) + "**")
            st.plotly_chart(charts.metric_curves(history, quality_keys), key="share_curve_quality")


def _evaluation(run: RunRecord, report: dict[str, Any]) -> None:
    metrics = {k: v for k, v in (report.get("metrics") or {}).items() if isinstance(v, int | float)}
    if metrics:
        report_section.metric_table(metrics, report.get("n_test"))
    home = data.get_settings().home
    if report.get("task") == "regression":
        report_section.regression(report, home)
    elif report.get("task") == "classification":
        report_section.classification(report, home)
    importance = report.get("importance")
    if isinstance(importance, dict) and importance.get("features"):
        from engine.report.importance_chart import caption, importance_bars

        st.markdown("**Feature importance**")
        st.plotly_chart(importance_bars(importance), key="share_importance")
        st.caption(caption(importance))


# ---------------------------------------------------------------- runs side by side


def _compare_view(db: Engine, link: ShareLinkRecord) -> None:
    wanted = [int(i) for i in link.target.get("runs") or []]
    runs = run_query.runs_by_ids(db, wanted)
    st.title("Compare")
    missing = [i for i in wanted if i not in {r.id for r in runs}]
    if missing:
        st.caption(f"Run {', '.join(f'#{i}' for i in missing)} no longer exists.")
    if not runs:
        st.warning("The shared runs no longer exist: they were deleted after the link was made.")
        return
    labels = {r.id: f"#{r.id} {r.name}" for r in runs}
    st.markdown(" · ".join(data.md_text(label) for label in labels.values()))
    shown_keys = {k for r in runs for k in r.summary} - {EPOCH_KEY}
    keys = sorted(k for k in shown_keys if not k.startswith("sys/"))
    curve_keys = [k for k in keys if not k.startswith("test_")] or keys
    if not keys:
        st.info("These runs have no metrics yet.")
        return
    default = next((k for k in ("val_loss", "train_loss") if k in curve_keys), curve_keys[0])
    key = st.selectbox(
        "Metric",
        curve_keys,
        index=curve_keys.index(default),
        format_func=metric_label,
        key="share_cmp_key",
    )
    history = drawn_history(
        db, list(labels), [key, EPOCH_KEY], max_points=compare_charts.points_per_run(len(labels))
    )
    st.plotly_chart(
        compare_charts.compare_curves(history, key, run_labels=labels), key="share_cmp_curves"
    )
    metrics = compare_charts.metrics_table(runs, keys)
    # As a person reads them: an accuracy as 86.4 %, a loss as a number.
    for k in keys:
        metrics[k] = [format_metric(k, v) if v is not None else "—" for v in metrics[k]]
    metrics = metrics.rename(columns={k: metric_label(k) for k in keys})
    st.markdown("**Metrics** (last value of each)")
    st.dataframe(metrics, hide_index=True, key="share_cmp_metrics")


# ---------------------------------------------------------------- a model's Playground


def _model_run(db: Engine, link: ShareLinkRecord) -> tuple[int, str] | None:
    """The run whose model the link lets visitors try, and its title; None (said) when gone."""
    if "model" in link.target:
        model = registry.get_model(db, str(link.target["model"]))
        if model is None:
            st.warning("The shared model is no longer registered.")
            return None
        version = model.default  # production, else the newest live version
        return version.run_id, f"{model.name} v{version.version}"
    run = run_store.get_run(db, int(link.target["model_run"]))
    if run is None:
        st.warning("The shared model's run no longer exists.")
        return None
    return run.id, f"#{run.id} {run.name}"


def _model_view(db: Engine, link: ShareLinkRecord) -> None:
    # Imported here: the predictor pulls in torch, which the run and compare views never need.
    from dashboard.components.playground_inputs import image_input, table_inputs, text_input
    from dashboard.components.playground_model import PickedModel, example_text, load_model
    from dashboard.components.playground_output import show_metrics, show_prediction
    from engine.ml.predictor import PredictorError

    st.title("Playground")
    found = _model_run(db, link)
    if found is None:
        return
    run_id, title = found
    st.caption(
        f"Try {data.md_text(title)} on your own input: the prediction, how sure it is, and "
        "which parts of the input drove it."
    )
    runs = run_query.runs_by_ids(db, [run_id])
    picked = PickedModel(
        run_id,
        title,
        checkpoint_path(data.get_settings(), run_id),
        runs[0].dataset_id if runs else None,
    )
    try:
        loaded = load_model(picked)
    except PredictorError as exc:
        st.error(f"This model cannot be used now. {data.md_text(str(exc))}")
        return
    predictor = loaded.predictor
    if predictor.kind == "tabular":
        inputs = table_inputs([predictor.preprocessor], "share_in")
    elif predictor.kind == "text":
        column = getattr(predictor.preprocessor, "text_column", "")
        inputs = text_input("share_text", example_text(picked, column))
    else:
        inputs = image_input("share_image")
    st.divider()
    if inputs is not None:
        per_minute = data.get_settings().share_predict_per_min
        if sharing.allow_prediction(link.id, per_minute):
            show_prediction(loaded, inputs, key="share_out")
        else:
            st.warning(
                f"This shared model has answered its {per_minute} predictions for this minute. "
                "Wait a minute, then change an input to try again.",
                icon=":material/hourglass:",
            )
    with st.expander("Test metrics", expanded=True):
        show_metrics(run_id)
