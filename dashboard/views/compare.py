"""Compare: the runs in ?runs=1,2,3 side by side: curves, params, metrics, parallel coordinates
and a param-vs-metric scatter. The chart settings live in the URL too, so a view is a link."""

import pandas as pd
import streamlit as st

from dashboard import auth, data
from dashboard.components.run_table import parse_ids
from dashboard.components.share_button import share_button
from db import metrics as metric_store
from db import run_query
from engine.core.catalog import metric_label
from engine.core.epochs import EPOCH_KEY
from engine.core.metric_info import direction
from engine.report import compare_charts, compare_groups
from engine.services import runs as run_actions
from engine.services.curves import drawn_history

auth.guard_page()
st.title("Compare")
db = data.get_db()

wanted = parse_ids(st.query_params.get("runs"))
runs = run_query.runs_by_ids(db, wanted) if wanted else []
missing = [i for i in wanted if i not in {r.id for r in runs}]
if missing:
    st.warning(f"No run {', '.join(f'#{i}' for i in missing)}: left out of the comparison.")
if not runs:
    st.info(
        "Pick runs to compare on the Runs page (select rows, then **Compare**), or open a link "
        "such as `compare?runs=1,2,3`.",
        icon=":material/compare_arrows:",
    )
    st.page_link(data.RUNS_PAGE, label="Go to Runs", icon=":material/list:")
    st.stop()

# A project's pinned baseline run joins every comparison of its runs, first, named as such.
baselines = set(run_actions.baseline_runs(db, {r.project_id for r in runs}))
added = [i for i in baselines if i not in {r.id for r in runs}]
if added:
    runs = [*run_query.runs_by_ids(db, added), *runs]
labels = {r.id: f"#{r.id} {r.name}" + (" (baseline)" if r.id in baselines else "") for r in runs}
# The epoch series is the x axis, not a result (engine/core/epochs.py).
# The model's metrics; the runs' sys/… figures (CPU, memory, GPU) only as curves, after them.
shown_keys = {k for r in runs for k in r.summary} - {EPOCH_KEY}
keys = sorted(k for k in shown_keys if not k.startswith("sys/"))
curve_keys = keys + sorted(k for k in shown_keys if k.startswith("sys/"))
mixed = compare_charts.dataset_warning(runs)
if mixed:
    st.warning(data.md_text(mixed), icon=":material/dataset:")
legend = compare_charts.runs_legend(runs)
share_button("compare", list(labels), key="share_cmp")  # the runs shown, baseline included
with st.expander(
    f"{len(runs)} run{'s' if len(runs) != 1 else ''} compared — colours, names, datasets",
    expanded=len(runs) <= compare_charts.LEGEND_MAX_RUNS,
):
    # A scrolling table rather than a paragraph of names: 100 runs stay a few lines tall.
    st.dataframe(
        legend.style.apply(
            lambda column: [f"background-color: {c}; color: {c}" for c in column],
            subset=["colour"],
        ),
        hide_index=True,
        height=min(36 + 35 * len(legend), 250),
        key="cmp_legend",
    )


def _param(name: str, options: list, default):  # noqa: ANN001, ANN202
    """A setting from the URL when it is one of the options, else the default."""
    value = st.query_params.get(name)
    return value if value in options else default


NO_GROUPS = "(no groups)"


def _group_by() -> str | None:
    """The param the runs are grouped by (?group=seed), or None: a selectbox above the tabs,
    offered when some param differs between the runs (compare_groups.group_options)."""
    options = compare_groups.group_options(runs) if len(runs) > 1 else []
    if not options:
        return None
    choices = [NO_GROUPS, *options]
    chosen = st.selectbox(
        "Group runs by",
        choices,
        index=choices.index(_param("group", options, NO_GROUPS)),
        key="cmp_group",
        help="Runs that share this param's value become one group: curves as the mean with a "
        "band of ±1 standard deviation, metrics as mean ± standard deviation, with the run count.",
    )
    if chosen == NO_GROUPS:
        st.query_params.pop("group", None)
        return None
    st.query_params["group"] = chosen
    return chosen


group = _group_by()
group_values = compare_groups.group_values(runs, group) if group else {}


def _curves() -> None:
    if not curve_keys:
        st.info("These runs have no metrics yet.")
    else:
        key_col, x_col, smooth_col, log_col = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
        default_key = next((k for k in ("val_loss", "train_loss") if k in keys), curve_keys[0])
        key = key_col.selectbox(
            "Metric",
            curve_keys,
            index=curve_keys.index(_param("metric", curve_keys, default_key)),
            key="cmp_key",
        )
        x_axis = x_col.radio(
            "x axis",
            list(compare_charts.X_AXES),
            format_func=lambda x: "epoch" if x == "step" else "wall time",
            horizontal=True,
            key="cmp_x",
            index=list(compare_charts.X_AXES).index(
                _param("x", list(compare_charts.X_AXES), "step")
            ),
        )
        try:
            smooth_default = min(0.99, max(0.0, float(st.query_params.get("smooth", 0))))
        except ValueError:
            smooth_default = 0.0
        smoothing = smooth_col.slider(
            "Smoothing", 0.0, 0.99, smooth_default, 0.01, key="cmp_smooth"
        )
        log_y = log_col.toggle("Log scale", value=st.query_params.get("log") == "1", key="cmp_log")
        st.query_params.update(
            {"metric": key, "x": x_axis, "smooth": f"{smoothing:g}", "log": "1" if log_y else "0"}
        )
        if key.startswith("sys/") and x_axis == "step":
            st.caption("CPU, memory and GPU figures are drawn against wall time.")
        # More metrics as panels of their own, two abreast (?panels=val_accuracy,lr): the runs
        # keep their colours in every panel, system figures (sys/…) included.
        others = [k for k in curve_keys if k != key]
        wanted_panels = [k for k in st.query_params.get("panels", "").split(",") if k in others]
        panels = st.multiselect(
            "More panels", others, default=wanted_panels, key="cmp_panels", placeholder="metrics"
        )
        if panels:
            st.query_params["panels"] = ",".join(panels)
        else:
            st.query_params.pop("panels", None)
        drawn = [key, *panels]
        # The epoch series places each point at its epoch (engine/core/epochs.py).
        if smoothing and not group:
            # Smoothing averages over neighbouring points, so it needs every one of them.
            history = metric_store.metric_history(db, list(labels), keys=[*drawn, EPOCH_KEY])
        else:
            history = drawn_history(
                db,
                list(labels),
                [*drawn, EPOCH_KEY],
                max_points=compare_charts.points_per_run(len(labels)),
            )

        def chart(metric: str, chart_key: str) -> None:
            # A system figure's step is seconds since the run began, not an optimizer step.
            axis = "wall_time" if metric.startswith("sys/") else x_axis
            if group:
                figure = compare_groups.group_curves(
                    history, metric, group_values, param=group, x_axis=axis, log_y=log_y
                )
            else:
                figure = compare_charts.compare_curves(
                    history,
                    metric,
                    run_labels=labels,
                    x_axis=axis,
                    smoothing=smoothing,
                    log_y=log_y,
                )
            st.plotly_chart(figure, key=chart_key)

        chart(key, "cmp_group_curves" if group else "cmp_curves")
        for start in range(0, len(panels), 2):
            for column, metric in zip(st.columns(2), panels[start : start + 2], strict=False):
                with column:
                    st.markdown(f"**{metric_label(metric)}**")
                    chart(metric, f"cmp_panel_{metric}")
        if group:
            st.caption(
                f"One line per {group}: the mean of its runs on a common grid of "
                f"{compare_groups.GROUP_POINTS} points, the band ±1 standard deviation where "
                "the group has two or more runs (smoothing is not applied to groups)."
            )
            return
        st.caption(
            f"Long series are drawn with at most {compare_charts.points_per_run(len(labels)):,} "
            "points per run (first, last, and the min and max of each stretch); smoothing "
            "reads every point, so it takes longer on long runs."
        )


def _params() -> None:
    only_diff = st.toggle("Only differences", value=True, key="cmp_only_diff")
    shown = compare_charts.params_table(runs, only_differences=only_diff)
    if only_diff and len(shown.columns) == 2 and len(runs) > 1:
        st.info("These runs share every param.")
    st.dataframe(shown, hide_index=True, key="cmp_params")


def _metrics() -> None:
    metrics = compare_charts.metrics_table(runs, keys)
    if not keys:
        st.info("These runs have no metrics yet.")
    else:
        best = compare_charts.best_runs(metrics, keys)
        if group:
            st.markdown(f"**By {group}**: mean ± standard deviation over each group's runs")
            table = compare_groups.group_metrics(runs, keys, group_values)
            st.dataframe(
                compare_groups.shown_group_metrics(table, keys),
                hide_index=True,
                key="cmp_group_metrics",
            )
            st.markdown("**Each run**")

        def _mark_best(column: pd.Series) -> list[str]:
            way = direction(str(column.name)) if column.name in keys else None
            if way is None or column.isna().all():
                return [""] * len(column)  # no "best" learning rate or epoch duration
            values = pd.to_numeric(column)
            target = values.min() if way == "lower" else values.max()
            return [
                "font-weight: bold; background-color: #21c3544d" if v == target else ""
                for v in values
            ]

        st.dataframe(
            metrics.style.apply(_mark_best).format(precision=4, subset=keys),
            hide_index=True,
            key="cmp_metrics",
        )
        st.caption(
            "Last value of each metric; the best per column is highlighted (lower is "
            "better for losses and errors, higher for accuracy and the like). Settings and "
            "timings such as the learning rate or seconds per epoch have no best."
        )
        st.markdown("**Best per metric**")
        st.dataframe(best, hide_index=True, key="cmp_best")


def _parallel() -> None:
    metrics = compare_charts.metrics_table(runs, keys)
    varying = compare_charts.params_table(runs, only_differences=True)
    if not keys or len(runs) < 2:
        st.info("Parallel coordinates need at least two runs with metrics.")
    else:
        pc_key = st.selectbox(
            "Colour by metric",
            keys,
            index=keys.index(_param("metric", keys, keys[0])),
            key="cmp_pc_key",
        )
        st.plotly_chart(
            compare_charts.parallel_coordinates(varying, metrics, pc_key), key="cmp_parallel"
        )
        st.caption("One axis per param that differs between these runs; drag on an axis to filter.")


def _scatter() -> None:
    params = compare_charts.params_table(runs)
    metrics = compare_charts.metrics_table(runs, keys)
    varying = compare_charts.params_table(runs, only_differences=True)
    param_choices = [c for c in params.columns if c not in ("id", "name")]
    if not keys:
        st.info("These runs have no metrics yet.")
    else:
        x_col, y_col, log_col = st.columns([2, 2, 1], vertical_alignment="bottom")
        preferred = next((c for c in varying.columns if c not in ("id", "name")), param_choices[0])
        param = x_col.selectbox(
            "Param (x)", param_choices, index=param_choices.index(preferred), key="cmp_sc_param"
        )
        sc_key = y_col.selectbox("Metric (y)", keys, key="cmp_sc_key")
        log_x = log_col.toggle("Log x", value=param == "learning_rate", key="cmp_sc_log")
        st.plotly_chart(
            compare_charts.param_scatter(params, metrics, param, sc_key, log_x=log_x),
            key="cmp_scatter",
        )


# Only the open tab runs (its name is in the URL, ?tab=Metrics): opening Compare draws the
# curves alone, not a parallel-coordinates plot and a scatter nobody looks at yet.
tabs = {
    "Curves": (_curves, "drawing the curves"),
    "Params": (_params, "showing the params"),
    "Metrics": (_metrics, "showing the metrics"),
    "Parallel coordinates": (_parallel, "drawing parallel coordinates"),
    "Scatter": (_scatter, "drawing the scatter"),
}
for tab, (show, action) in zip(
    st.tabs(list(tabs), key="tab", bind="query-params"), tabs.values(), strict=True
):
    if tab.open:
        with tab, data.shown_errors(action):
            show()
