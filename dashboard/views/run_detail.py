"""Run: one run's status, results, live curves, evaluation, config, log and files (?run=ID).

While the run is queued or running, fragments re-read it every second and redraw only the
header (its duration ticks), the progress (it follows the epochs, within one too) and the
curves; when the status changes they rerun the whole page, so the actions and the result cards
follow. Every part of the page sits in a container that is there on every run, whatever the
status: the parts below keep their place, so nothing blanks and redraws when the status flips.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth, data
from dashboard.components import (
    alerts_section,
    code_section,
    export_section,
    importance_view,
    mistake_fixes,
    registry_section,
    report_section,
    run_results,
)
from dashboard.components.auto_choice import show as show_auto_choice
from dashboard.components.run_edit_panel import edit_panel
from dashboard.components.share_button import share_button
from db import artifacts as artifact_store
from db import metrics as metric_store
from db import runs as run_store
from db.records import RunRecord
from db.session import utcnow
from engine.core.catalog import TEST_METRICS, metric_label
from engine.core.csv_safe import to_safe_csv
from engine.core.epochs import EPOCH_KEY, epochs_done
from engine.core.formatting import format_duration
from engine.core.pretrained import FAMILY as PRETRAINED
from engine.core.pretrained import training_summary
from engine.core.run_files import log_path, report_path, tail
from engine.report import charts
from engine.services import runs as run_actions
from engine.services.curves import drawn_history
from engine.services.permissions import Permission
from engine.services.recovery import resumable_epoch, settle_for_readers

REFRESH_S = 1
# Until a run's first point is stored the curves look twice as often: the first point is what
# a demo audience waits for. The page is drawn again when the run finishes, at REFRESH_S.
FIRST_POINT_REFRESH_S = 0.5
# The runner samples CPU and memory every 5 s (engine/execution/system_metrics.py): redrawing
# those charts every second re-sent and re-drew the same figures, work a busy machine needs
# for the curves.
SYSTEM_REFRESH_S = 5
# A runner flushes about every second; this much silence means it is stuck or gone.
STALE_HEARTBEAT_S = 60
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
LOG_LINES = 300

auth.guard_page()
db = data.get_db()
settings = data.get_settings()


def _choose_run(missing_id: int | None) -> None:
    """No (valid) ?run= in the URL: offer the recent runs instead of an error."""
    st.title("Run")
    if missing_id is not None:
        st.warning(f"There is no run #{missing_id}. Choose another one below.")
    recent = run_store.list_runs(db, limit=100)
    if not recent:
        st.info("No runs yet — train one on a demo dataset from Home.", icon=":material/info:")
        st.page_link(data.HOME_PAGE, label="Go to Home", icon=":material/home:")
        return
    names = {r.id: f"#{r.id} · {r.name} · {r.status}" for r in recent}
    pick = st.selectbox(
        "Open a run",
        list(names),
        index=None,
        format_func=names.get,
        placeholder="Choose one of the 100 most recent runs",
    )
    if pick is not None:
        st.query_params["run"] = str(pick)
        st.rerun()


def _progress(run: RunRecord, alive: bool) -> None:
    """Where an active run stands: waiting for the engine, or epoch N of M."""
    if run.status == "queued":
        if alive:
            st.info(
                "Queued — it starts as soon as the engine has a free slot.",
                icon=":material/schedule:",
            )
        else:
            st.warning(
                f"Queued, but the engine is not running. {data.ENGINE_HINT}",
                icon=":material/power_off:",
            )
        return
    st.progress(_epoch_fraction(run), text=_progress_text(run))
    age = run_store.heartbeat_age_s(run)
    if age is not None and age > STALE_HEARTBEAT_S:
        st.warning(
            f"No sign of life from this run for {format_duration(age)}. If the engine "
            f"stopped, it marks the run failed or requeues it when it restarts. {data.ENGINE_HINT}",
            icon=":material/heart_broken:",
        )
    if run.cancel_requested:
        # Shown only while the run is active: the page reruns when it is cancelled.
        st.caption("Cancel requested — the run stops within a few seconds.")


def _epoch_fraction(run: RunRecord) -> float:
    """The share of the run's epochs done, within an epoch too (engine/core/epochs.py)."""
    epochs = int(run.config.get("epochs") or 0)
    return min(1.0, max(0.0, epochs_done(run.summary) / epochs)) if epochs else 0.0


def _progress_text(run: RunRecord) -> str:
    """ "Epoch 3 of 50" while epoch 3 trains; "Starting…" until the first point arrives."""
    epochs = int(run.config.get("epochs") or 0)
    done = epochs_done(run.summary)
    if not run.summary:
        return "Starting — loading the data and building the model…"
    current = int(done) + 1 if done < epochs or not epochs else epochs
    return f"Epoch {current} of {epochs}" if epochs else f"Epoch {current}"


def _curves(run_id: int, shown_status: str, task: str) -> None:
    """Progress and curves; re-run alone every few seconds while the run is active."""
    # The guard sits inside: a fragment's own reruns do not pass through the page's code.
    with data.shown_errors("drawing the curves"):
        _draw_curves(run_id, shown_status, task)


def _draw_curves(run_id: int, shown_status: str, task: str) -> None:
    run = run_store.get_run(db, run_id)
    if run is None:
        st.warning("This run no longer exists.")
        return
    if run.status != shown_status:
        st.rerun()  # the whole page: header, actions and result cards change with the status
    with st.container():  # there for every status, so the charts below keep their place
        if run.status in data.ACTIVE_STATUSES:
            _progress(run, data.engine_alive(db))

    loss_keys, quality_keys = run_results.curve_keys(run, task)
    # What is drawn, not every point: a 10,000-step run sends 2,000 points per curve. The epoch
    # series is the x axis: training-loss points within an epoch sit where they belong.
    history = drawn_history(
        db,
        [run_id],
        [*loss_keys, *quality_keys, "lr", EPOCH_KEY],
        max_points=charts.MAX_POINTS_PER_TRACE,
    )
    if history.empty:
        _no_curves_yet(run, loss_keys)
        return
    loss_col, quality_col = st.columns(2)
    with loss_col:
        if loss_keys:  # an SDK run may log no loss at all
            st.markdown("**Loss**")
            st.plotly_chart(charts.metric_curves(history, loss_keys), key="curve_loss")
    with quality_col:
        if quality_keys:
            st.markdown("**" + ", ".join(metric_label(k) for k in quality_keys) + "**")
            st.plotly_chart(charts.metric_curves(history, quality_keys), key="curve_quality")
    if (history["key"] == "lr").any():
        # Drawn only once opened: a closed expander's chart would still cost the browser a
        # third of the page's drawing time.
        learning_rate = st.expander("Learning rate", key="lr_open", on_change="rerun")
        if learning_rate.open:
            with learning_rate:
                st.plotly_chart(charts.metric_curves(history, ["lr"]), key="curve_lr")
    st.download_button(
        "Download all points (CSV)",
        # Every point, read only when clicked (not on every tick).
        data=lambda: to_safe_csv(
            metric_store.metric_history(db, [run_id], keys=[*loss_keys, *quality_keys, "lr"]),
            index=False,
        ),
        file_name=f"run-{run_id}-metrics.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
    )


def _no_curves_yet(run: RunRecord, loss_keys: list[str]) -> None:
    """Before the first point: an active run gets its loss chart, empty, where the curve will
    be drawn. The browser loads its charting code (Plotly, 4.7 MB of JavaScript: seconds on a
    busy machine) while the run starts, not after the first point has arrived, and the chart
    keeps its place when it does."""
    message = "No curves yet: the training loss appears within seconds of the start."
    if run.status not in data.ACTIVE_STATUSES or not loss_keys:
        st.info(message, icon=":material/timeline:")
        return
    loss_col, quality_col = st.columns(2)
    with loss_col:
        st.markdown("**Loss**")
        empty = charts.epoch_axis(charts.metric_curves(pd.DataFrame(), loss_keys), 0.0)
        st.plotly_chart(empty, key="curve_loss")
    quality_col.info(message, icon=":material/timeline:")


def _log(run_id: int) -> None:
    with data.shown_errors("reading the log"):
        _show_log(run_id)


def _show_log(run_id: int) -> None:
    text = tail(log_path(settings, run_id), LOG_LINES)
    if text:
        st.caption(f"The newest lines of run.log (up to {LOG_LINES}).")
        st.code(text, language="text", height=500 if text.count("\n") > 25 else "content")
    else:
        st.info("No log yet: the engine writes it once the run starts.")


def _report(run_id: int) -> dict[str, Any] | None:
    path = report_path(settings, run_id)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        st.warning(f"The evaluation report {path} cannot be read; it may be incomplete.")
        return None
    return report if isinstance(report, dict) else None


def _evaluation(run: RunRecord, task: str) -> None:
    report = _report(run.id)
    known = TEST_METRICS.get(task, [])
    keys = [k for k in known if k in run.summary]
    keys += sorted(k for k in run.summary if k.startswith("test_") and k not in known)
    metrics = {k: run.last(k) for k in keys}
    if not metrics and report:
        metrics = {k: v for k, v in (report.get("metrics") or {}).items()}
    if not metrics and not report:
        st.info(
            "Evaluation on the held-out test rows appears here when the run completes.",
            icon=":material/fact_check:",
        )
        return
    st.markdown("**Test metrics**")
    report_section.metric_table(metrics, (report or {}).get("n_test"))
    if not report:
        return
    if report.get("task") == "regression":
        report_section.regression(report, settings.home)
    else:
        report_section.classification(report, settings.home)
    mistake_fixes.fix_mistakes(run, report)  # relabel / leave out → a new dataset version
    importance_view.section(report, run.id, (report.get("input") or {}).get("kind"))


def _artifact_file(path: str, run_id: int) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else settings.run_dir(run_id) / candidate


def _artifacts(run: RunRecord) -> None:
    records = artifact_store.list_artifacts(db, run.id)
    files = [(a.kind, _artifact_file(a.path, run.id), a.bytes) for a in records]
    if not files:
        # An engine that kept files but did not register them still shows them.
        run_dir = settings.run_dir(run.id)
        if run_dir.is_dir():
            files = [
                ("file", p, p.stat().st_size) for p in sorted(run_dir.iterdir()) if p.is_file()
            ]
    if not files:
        st.info(
            "No files yet: checkpoints, the report and the log appear here.",
            icon=":material/folder_open:",
        )
        return
    for i, (kind, path, size) in enumerate(files):
        name_col, kind_col, size_col, action_col = st.columns(
            [4, 1, 1, 2], vertical_alignment="center"
        )
        name_col.text(path.name)
        kind_col.caption(kind)
        size_col.caption(_size(size))
        if not path.is_file():
            action_col.caption("file missing")
        elif size > MAX_DOWNLOAD_BYTES:
            action_col.caption(f"over {_size(MAX_DOWNLOAD_BYTES)}: copy it from {path.parent}")
        else:
            action_col.download_button(
                "Download",
                data=path.read_bytes,
                file_name=path.name,
                key=f"artifact_{i}",
                on_click="ignore",
                icon=":material/download:",
            )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _verdict(run: RunRecord) -> None:
    if not isinstance(run.verdict, dict):
        st.caption(
            "No verdict: this run was not compared with baselines (it finished before Seedlab "
            "did that), so nothing here says whether its result is any good. Clone it and train "
            "again to get one."
        )
        return
    run_results.verdict(run)


def _pin_button(run: RunRecord) -> None:
    """Pin the run as its project's baseline (first on Runs, drawn in every Compare), or unpin
    it when it is the one."""
    if run.status in data.ACTIVE_STATUSES:
        return
    pinned = run.id in run_actions.baseline_runs(db, [run.project_id])
    if st.button(
        "Unpin baseline" if pinned else "Pin as baseline",
        icon=":material/push_pin:",
        help="The project's baseline run is listed first on Runs and drawn in every Compare "
        "chart of the project's runs.",
        disabled=not auth.can(Permission.EDIT, run.owner),
    ):
        with data.shown_errors("pinning the baseline"):
            actor = auth.require(Permission.EDIT, run.owner, f"run {run.id}")
            run_actions.pin_baseline(db, actor, run.id, pinned=not pinned)
            data.flash("Unpinned." if pinned else "Pinned as the project's baseline.", "success")
            st.rerun()


def _actions(run: RunRecord) -> None:
    with st.container(horizontal=True, horizontal_alignment="right"):
        if run.status in data.ACTIVE_STATUSES:
            if st.button(
                "Cancel",
                icon=":material/stop_circle:",
                disabled=run.cancel_requested or not auth.can(Permission.CANCEL, run.owner),
                help="Stop the run; a running one saves its checkpoint first.",
            ):
                with data.shown_errors("cancelling the run"):
                    actor = auth.require(Permission.CANCEL, run.owner, f"run {run.id}")
                    status = run_actions.cancel_run(db, actor, run.id)
                    if status == "cancelled":
                        data.flash("Cancelled before it started.", "info")
                    elif status != "running":
                        data.flash(f"The run had already finished ({status}).", "info")
                    # A running one says "Cancel requested" under its progress bar until it
                    # stops; a one-time message up here would stay after it had stopped.
                    st.rerun()
        _resume_button(run)
        # A run logged through the SDK was trained by the team's own code: Seedlab can neither
        # train it again nor load its model, so it offers no Clone and no Playground.
        sdk_run = run.source == "sdk"
        if not sdk_run and st.button(
            "Clone",
            icon=":material/content_copy:",
            help="Open New run with this run's settings.",
            disabled=not auth.can(Permission.LAUNCH),
        ):
            st.switch_page(data.NEW_RUN_PAGE, query_params={"clone": str(run.id)})
        with data.shown_errors("reading the dataset's versions"):
            mistake_fixes.retrain_actions(run)  # "Retrain on version N", Compare with the parent
        _pin_button(run)
        share_button("run", run.id, key="share_run")  # dashboard/components/share_button.py
        if run.status == "completed" and run.source == "builtin":  # a model Seedlab can load
            st.page_link(
                data.PLAYGROUND_PAGE,
                label="Try it",
                icon=":material/smart_toy:",
                query_params={"run": str(run.id)},
                help="Open this model in the Playground.",
            )
        if run.dataset_id is not None:
            number = run.dataset_version or 1  # runs from before versions: version 1
            st.page_link(
                data.DATASETS_PAGE,
                label=f"Dataset version {number}",
                icon=":material/table:",
                query_params={"dataset": str(run.dataset_id), "version": str(number)},
                help="The exact version of the dataset this run trained on.",
            )


def _resume_button(run: RunRecord) -> None:
    """Resume (services/recovery.py): the same run continues after its last checkpointed epoch."""
    epoch = resumable_epoch(settings, run.id) if run.status in ("cancelled", "failed") else None
    if run.source == "recipe" and run.status in ("cancelled", "failed"):
        epoch = 0  # the script resumes itself from its checkpoint folder
    if epoch is None:
        return
    if st.button(
        "Resume",
        icon=":material/play_circle:",
        help="Queue this run again; its script starts with SEEDLAB_RESUMED=1 and its "
        "checkpoint folder, its curves go on."
        if run.source == "recipe"
        else f"Queue this run again; it continues after epoch {epoch}, its curves go on.",
        disabled=not auth.can(Permission.RESUME, run.owner),
    ):
        with data.shown_errors("resuming the run"):
            actor = auth.require(Permission.RESUME, run.owner, f"run {run.id}")
            resumed = run_actions.resume(settings, db, actor, run.id)  # the checkpoint's epoch
            data.flash(
                "Queued — its script starts again, told it resumes."
                if run.source == "recipe"
                else f"Queued — the run resumes after epoch {resumed}.",
                "info",
            )
            st.rerun()


def _header(run_id: int, shown_status: str, task: str) -> None:
    """The status badge and the run's facts; re-run every second while the run is active, so
    its duration ticks. A changed status reruns the whole page (actions, result cards)."""
    with data.shown_errors("reading the run"):
        run = run_store.get_run(db, run_id)
        if run is None:
            return
        if run.status != shown_status:
            st.rerun()
        with st.container(horizontal=True, vertical_alignment="center"):
            data.status_badge(run.status, run.verdict)
            st.caption(data.md_text(" · ".join(_facts(run, task))))


def _facts(run: RunRecord, task: str) -> list[str]:
    facts = (
        [f"dataset {run.dataset_name} version {run.dataset_version or 1}", task]
        if run.dataset_name
        else ["no dataset"]
    )
    if run.config.get("model") == PRETRAINED:
        # Which base model, and which of its layers trained (the report counts them).
        facts.append(training_summary(run.config, (_report(run.id) or {}).get("trained_layers")))
    if run.source == "sdk":
        facts.append("logged by the SDK")
    if run.source == "recipe":
        facts.append(f"recipe {run.config.get('recipe')}")
    if run.device:
        facts.append(f"on {run.device}")
    facts.append(f"created {data.format_time(run.created_at)}")
    if run.owner:
        facts.append(f"by {run.owner}")
    if run.status == "running" and run.started_at is not None:
        # From the clock, not the last heartbeat: it ticks with every refresh of the header.
        facts.append(f"running for {format_duration(_seconds_since(run.started_at))}")
    elif run.duration_s is not None:
        facts.append(f"took {format_duration(run.duration_s)}")
    if run.parent_run_id:
        facts.append(f"cloned from #{run.parent_run_id}")
    if run.attempts:
        facts.append(f"resumed {run.attempts}×")
    return facts


def _seconds_since(then: datetime) -> float:
    return max(0.0, (utcnow() - then).total_seconds())


def _outcome(run: RunRecord, task: str) -> None:
    if run.status == "failed":
        st.error(
            data.md_message(
                run.error or "The run failed without a message; its log may say why (Logs tab)."
            ),
            icon=":material/error:",
        )
    elif run.status == "cancelled":
        st.warning(
            "Cancelled. Resume it to continue from its last epoch, or clone it to start again.",
            icon=":material/cancel:",
        )
    elif run.status == "completed":
        _verdict(run)
        run_results.result_cards(run, task)


# ---------------------------------------------------------------- page

run_id = data.query_int("run")
# A run whose engine died long ago is settled here (requeued or failed), never shown running.
with data.shown_errors("checking for stopped runs"):
    settle_for_readers(settings, db)
run = run_store.get_run(db, run_id) if run_id is not None else None
if run is None:
    with data.shown_errors("listing runs"):
        _choose_run(run_id)
    st.stop()

dataset = next((d for d in data.datasets() if d.id == run.dataset_id), None)
task = data.effective_task(run, dataset)
active = run.status in data.ACTIVE_STATUSES

title_col, action_col = st.columns([3, 2], vertical_alignment="bottom")
with title_col:
    st.title(f"#{run.id} · {data.md_text(run.name)}")
with action_col:
    _actions(run)
with st.container():  # there on every run, message or not, so the layout below stays put
    data.show_flash()

refresh = REFRESH_S if active else None
st.fragment(_header, run_every=refresh)(run.id, run.status, task)

# ---- edit panel (name, tags, note, archive, delete): dashboard/components/run_edit_panel.py
edit_panel(db, run)
with st.container():
    if run.tags or run.notes:
        # Each tag and the note on its own (md_text isolates each: one cannot reorder another).
        st.caption(
            " · ".join(data.md_text(t) for t in [*(f"#{t}" for t in run.tags), run.notes][:12])
        )
# ---- end edit panel
# ---- alert me (an e-mail when this run ends): dashboard/components/alerts_section.py
with data.shown_errors("reading the alerts"):
    alerts_section.alert_me(db, settings, run)
# ---- registry and sharing (Register model, HTML report): dashboard/components/registry_section.py
with data.shown_errors("reading the registry"):
    registry_section.show(db, settings, run)

with st.container():  # the status's message or the result cards, in one place for every status
    _outcome(run, task)


def _curves_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    curves_refresh = FIRST_POINT_REFRESH_S if refresh and not run.summary else refresh
    st.fragment(_curves, run_every=curves_refresh)(run.id, run.status, task)
    system_refresh = SYSTEM_REFRESH_S if refresh else None
    st.fragment(code_section.show_system, run_every=system_refresh)(db, run.id)  # sys/… metrics


def _evaluation_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    with data.shown_errors("reading the evaluation"):
        _evaluation(run, task)
        show_auto_choice(settings, run.id)  # what model=auto tried: components/auto_choice.py


def _config_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    st.json(run.config)


def _code_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    with data.shown_errors("reading what ran"):
        code_section.show_code(settings, run.id)  # dashboard/components/code_section.py


def _logs_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    st.fragment(_log, run_every=refresh)(run.id)


def _files_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    with data.shown_errors("listing the files"):
        _artifacts(run)


def _export_tab(run: RunRecord, task: str, refresh: float | None) -> None:
    with data.shown_errors("showing the exports"):
        export_section.show(settings, db, run)  # dashboard/components/export_section.py


# Only the open tab runs (its name is in the URL, ?tab=Logs; Curves by default), as on Compare:
# opening a run draws its curves alone, not an evaluation, a log and exports nobody looks at yet.
# Clicking another tab reruns the page with that one open; the live fragments (curves, log)
# exist only while their tab is open.
TABS = {
    "Curves": _curves_tab,
    "Evaluation": _evaluation_tab,
    "Config": _config_tab,
    "Code": _code_tab,
    "Logs": _logs_tab,
    "Artifacts": _files_tab,
    "Export & compress": _export_tab,
}
for tab, show in zip(
    st.tabs(list(TABS), key="tab", bind="query-params"), TABS.values(), strict=True
):
    if tab.open:
        with tab:
            show(run, task, refresh)
