"""Sweeps: define a search space over run settings, watch the trials, launch the winner.

`?sweep=ID` shows one sweep; without it the page lists sweeps and offers the New sweep form.
The engine's worker launches the trials (ordinary runs) and prunes them; this page only writes
the sweep's row, and reads what the engine wrote.
"""

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from dashboard import auth, data
from db import sweeps as sweep_store
from db.records import SweepRecord
from engine.core.catalog import MONITORS, metric_label
from engine.core.config import field_help
from engine.core.formatting import format_setting
from engine.report import sweep_charts
from engine.services import sweep_actions, sweeps
from engine.services.permissions import Permission

REFRESH_S = 3
STARTER_SPACE = pd.DataFrame(
    [
        {
            "field": "learning_rate",
            "kind": "log range",
            "low": 1e-4,
            "high": 1e-2,
            "step": None,
            "choices": "",
        },
        {
            "field": "hidden_sizes",
            "kind": "choices",
            "low": None,
            "high": None,
            "step": None,
            "choices": "64 | 128,64 | 256,128",
        },
        {"field": "dropout", "kind": "range", "low": 0.0, "high": 0.3, "step": None, "choices": ""},
    ]
)
KINDS = ["range", "log range", "choices"]

auth.guard_page()
st.title("Sweeps")
db = data.get_db()


def _space_from_table(table: pd.DataFrame) -> dict[str, Any]:
    space: dict[str, Any] = {}
    for row in table.to_dict(orient="records"):
        name = (row.get("field") or "").strip()
        if not name:
            continue
        if row.get("kind") == "choices":
            text = str(row.get("choices") or "")
            parts = text.split("|") if "|" in text else text.split(",")
            space[name] = {"choices": [yaml.safe_load(p) for p in parts if p.strip()]}
        else:
            spec = {"low": row.get("low"), "high": row.get("high")}
            if row.get("kind") == "log range":
                spec["log"] = True
            if row.get("step") not in (None, "") and not pd.isna(row.get("step")):
                spec["step"] = row["step"]
            space[name] = spec
    return space


def _new_sweep_form() -> None:
    records = data.datasets()
    if not records:
        st.info("Add a dataset first (Datasets page).", icon=":material/info:")
        return
    by_id = {r.id: r for r in records}
    dataset_id = st.selectbox(
        "Dataset",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].task} · {by_id[i].n_rows:,} rows",
        key="sw_dataset",
    )
    dataset = by_id[dataset_id]
    objectives = list(MONITORS[dataset.task])
    with st.form("new_sweep"):
        name_col, objective_col = st.columns(2)
        name = name_col.text_input("Sweep name", placeholder=f"{dataset.name}-sweep")
        objective = objective_col.selectbox(
            "Objective (validation metric)",
            objectives,
            index=1 if len(objectives) > 1 else 0,
            format_func=metric_label,
            help="Each trial is judged by its best epoch on this metric; higher is better for "
            "accuracy/F1, lower for loss/RMSE/MAE.",
        )
        c1, c2, c3, c4 = st.columns(4)
        sampler = c1.selectbox(
            "Sampler",
            list(sweeps.SAMPLERS),
            help="tpe learns from past trials; grid tries "
            "every combination; random samples uniformly.",
        )
        pruner = c2.selectbox(
            "Pruner",
            list(sweeps.PRUNERS),
            index=list(sweeps.PRUNERS).index("median"),
            help="Stop trials whose validation curve is worse "
            "than the median of earlier trials at the same epoch (median), or by successive "
            "halving. A pruned trial ends cancelled with the tag 'pruned'.",
        )
        trials = c3.number_input("Trials", min_value=1, max_value=1000, value=20)
        parallel = c4.number_input(
            "In parallel",
            min_value=1,
            max_value=64,
            value=2,
            help="Trials at once; the engine's concurrency cap also applies.",
        )
        c5, c6 = st.columns(2)
        epochs = c5.number_input(
            "Epochs per trial", min_value=1, max_value=10000, value=20, help=field_help("epochs")
        )
        minutes = c6.number_input(
            "Time limit (minutes, 0 = none)",
            min_value=0.0,
            value=0.0,
            help="No new trials after this; running ones finish.",
        )
        st.markdown("**Search space** — one row per setting to vary")
        table = st.data_editor(
            STARTER_SPACE,
            num_rows="dynamic",
            key="sw_space",
            column_config={
                "field": st.column_config.SelectboxColumn(
                    options=sweeps.searchable_fields(), required=True
                ),
                "kind": st.column_config.SelectboxColumn(options=KINDS, required=True),
                "low": st.column_config.NumberColumn(format="%g"),
                "high": st.column_config.NumberColumn(format="%g"),
                "step": st.column_config.NumberColumn(format="%g", help="grid needs a step"),
                "choices": st.column_config.TextColumn(
                    help="separated by | (or commas when no choice holds a comma)"
                ),
            },
            width="stretch",
        )
        with st.expander("…or paste the space as YAML (replaces the table)"):
            pasted = st.text_area(
                "Space YAML",
                placeholder="learning_rate: {low: 0.0001, high: 0.01, log: true}\n"
                "activation: [relu, gelu]",
                key="sw_yaml",
            )
        submitted = st.form_submit_button(
            "Start sweep",
            type="primary",
            icon=":material/tune:",
            disabled=not auth.can(Permission.LAUNCH),
        )
    if not submitted:
        return
    with data.shown_errors("starting the sweep"):
        actor = auth.require(Permission.LAUNCH)
        space = yaml.safe_load(pasted) if pasted.strip() else _space_from_table(table)
        sweep_id = sweep_actions.launch_sweep(
            db,
            actor,
            dataset.id,
            {
                "space": space,
                "sampler": sampler,
                "pruner": pruner,
                "objective": objective,
                "max_trials": int(trials),
                "parallelism": int(parallel),
                "time_limit_s": float(minutes) * 60 or None,
            },
            name=name,
            base={"epochs": int(epochs)},
        )
        st.query_params["sweep"] = str(sweep_id)
        st.rerun()


def _sweep_list() -> None:
    records = sweep_store.list_sweeps(db)
    if not records:
        st.caption("No sweeps yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "id": s.id,
                "name": s.name,
                "status": s.status,
                "dataset": s.dataset_name,
                "sampler": s.sampler,
                "objective": metric_label(s.objective),
                "trials": s.max_trials,
                "best run": s.best_run_id,
                "created": data.format_time(s.created_at),
            }
            for s in records
        ]
    )
    picked = st.dataframe(
        frame, hide_index=True, on_select="rerun", selection_mode="single-row", key="sw_list"
    )
    rows = picked.selection.rows if picked else []
    if rows:
        st.query_params["sweep"] = str(int(frame.iloc[rows[0]]["id"]))
        st.rerun()


def _figures(sweep: SweepRecord, trials: list[sweeps.Trial]) -> None:
    done = [t for t in trials if t.state == "complete"]
    if not done:
        st.info("Charts appear when the first trial completes.", icon=":material/hourglass:")
        return
    study = sweeps.build_study(sweep, trials)
    # Optuna's own chart titles are removed (sweep_charts): the headings here say it once.
    history_col, importance_col = st.columns(2, gap="large")
    with history_col:
        st.markdown("**Optimisation history**")
        st.plotly_chart(sweep_charts.history(study), key="sw_history")
    with importance_col:
        st.markdown("**Parameter importances**")
        distinct = len({tuple(sorted(t.params.items())) for t in done})
        draw, note = sweep_charts.importance_note(len(done), distinct)
        if draw:
            try:
                st.plotly_chart(sweep_charts.importances(study), key="sw_importance")
            except (RuntimeError, ValueError) as exc:
                note = f"Not computable yet: {exc}"
        st.caption(note)
    if len(sweep.space) >= 2:
        st.markdown("**Parallel coordinates**")
        st.plotly_chart(sweep_charts.parallel(study), key="sw_parallel")
    st.markdown("**Slices** — the objective against each setting")
    st.plotly_chart(sweep_charts.slices(study), key="sw_slice")


def _trials_table(sweep: SweepRecord, trials: list[sweeps.Trial]) -> None:
    best = sweeps.best_trial(sweep, trials)
    rows = [
        {
            "trial": t.number,
            "run": f"/run?run={t.run.id}",
            "state": t.shown_state,
            "status": t.run.status,
            metric_label(sweep.objective): t.value,
            "best": "★" if best is not None and t.run.id == best.run.id else "",
            **{k: format_setting(v) for k, v in t.params.items()},
        }
        for t in trials
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "run": st.column_config.LinkColumn(display_text=r"run=(\d+)"),
            metric_label(sweep.objective): st.column_config.NumberColumn(format="%.4f"),
        },
    )


def _detail(sweep_id: int) -> None:
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        st.warning(f"There is no sweep #{sweep_id}.")
        return
    title_col, action_col = st.columns([3, 2], vertical_alignment="bottom")
    title_col.subheader(f"#{sweep.id} · {data.md_text(sweep.name)}")
    with action_col, st.container(horizontal=True, horizontal_alignment="right"):
        if sweep.status == "running" and st.button(
            "Cancel sweep",
            icon=":material/stop_circle:",
            disabled=not auth.can(Permission.CANCEL, sweep.owner),
        ):
            with data.shown_errors("cancelling the sweep"):
                actor = auth.require(Permission.CANCEL, sweep.owner, f"sweep {sweep.id}")
                sweep_actions.cancel_sweep(db, actor, sweep.id)
                st.rerun()
        if sweep.best_run_id and st.button(
            "Launch best as a full run",
            type="primary",
            icon=":material/rocket_launch:",
            help="Queue the best trial's settings as an ordinary run.",
            disabled=not auth.can(Permission.LAUNCH),
        ):
            with data.shown_errors("launching the best config"):
                run_id = sweep_actions.launch_best(db, auth.require(Permission.LAUNCH), sweep.id)
                data.clear_caches()
                data.open_run(run_id)
        if st.button("All sweeps", icon=":material/list:"):
            del st.query_params["sweep"]
            st.rerun()
    st.fragment(_live, run_every=REFRESH_S if sweep.status == "running" else None)(
        sweep.id, sweep.status
    )


def _live(sweep_id: int, shown_status: str) -> None:
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep.status != shown_status:
        st.rerun(scope="app")  # the header's buttons (Cancel, Launch best) follow the status
    trials = sweeps.load_trials(db, sweep)
    facts = [
        f"**{sweep.status}**",
        f"dataset {data.md_text(sweep.dataset_name)}" if sweep.dataset_name else "",
        f"recipe {data.md_text(str(sweep.base_config['recipe']))}"
        if "recipe" in sweep.base_config
        else "",
        f"{sweep.sampler} sampler, {sweep.pruner} pruner",
        f"{metric_label(sweep.objective)} ({sweep.direction})",
        f"{len(trials)}/{sweep.max_trials} trials launched",
        sweeps.state_counts(trials),
    ]
    st.markdown(" · ".join(f for f in facts if f))
    if sweep.error:
        st.error(data.md_message(sweep.error))
    if sweep.status == "running" and not data.engine_alive(db):
        st.warning(f"The engine is not running, so no trial starts. {data.ENGINE_HINT}")
    if not trials:
        st.info("The engine launches the first trials within a second or two.")
        return
    _trials_table(sweep, trials)
    _figures(sweep, trials)


sweep_id = data.query_int("sweep")
if sweep_id is not None:
    with data.shown_errors("reading the sweep"):
        _detail(sweep_id)
else:
    with data.shown_errors("listing sweeps"):
        _sweep_list()
    st.subheader("New sweep")
    _new_sweep_form()
