"""Compare: the runs in ?runs=1,2,3 side by side: curves, params, metrics, parallel coordinates
and a param-vs-metric scatter. The chart settings live in the URL too, so a view is a link."""

import pandas as pd
import streamlit as st

from dashboard import auth, data
from dashboard.components.run_table import parse_ids
from db import metrics as metric_store
from db import run_query
from engine.report import compare_charts

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

labels = {r.id: f"#{r.id} {r.name}" for r in runs}
# The model's metrics; the runs' sys/… figures (CPU, memory, GPU) only as curves, after them.
keys = sorted({k for r in runs for k in r.summary if not k.startswith("sys/")})
curve_keys = keys + sorted({k for r in runs for k in r.summary if k.startswith("sys/")})
st.caption(f"{len(runs)} run(s): " + data.md_text(", ".join(labels.values())))


def _param(name: str, options: list, default):  # noqa: ANN001, ANN202
    """A setting from the URL when it is one of the options, else the default."""
    value = st.query_params.get(name)
    return value if value in options else default


curves_tab, params_tab, metrics_tab, parallel_tab, scatter_tab = st.tabs(
    ["Curves", "Params", "Metrics", "Parallel coordinates", "Scatter"]
)

with curves_tab, data.shown_errors("drawing the curves"):
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
            format_func=lambda x: "step (epoch)" if x == "step" else "wall time",
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
        history = metric_store.metric_history(db, list(labels), keys=[key])
        st.plotly_chart(
            compare_charts.compare_curves(
                history, key, run_labels=labels, x_axis=x_axis, smoothing=smoothing, log_y=log_y
            ),
            key="cmp_curves",
        )
        st.caption(
            f"Long series are drawn with at most {compare_charts.MAX_POINTS_PER_TRACE:,} points "
            "per run (first, last, and the min and max of each stretch); smoothing uses all."
        )

params = compare_charts.params_table(runs)
with params_tab:
    only_diff = st.toggle("Only differences", value=True, key="cmp_only_diff")
    shown = compare_charts.params_table(runs, only_differences=only_diff)
    if only_diff and len(shown.columns) == 2 and len(runs) > 1:
        st.info("These runs share every param.")
    st.dataframe(shown, hide_index=True, key="cmp_params")

metrics = compare_charts.metrics_table(runs, keys)
with metrics_tab:
    if not keys:
        st.info("These runs have no metrics yet.")
    else:
        best = compare_charts.best_runs(metrics, keys)

        def _mark_best(column: pd.Series) -> list[str]:
            if column.name not in keys or column.isna().all():
                return [""] * len(column)
            values = pd.to_numeric(column)
            target = values.min() if compare_charts.lower_is_better(column.name) else values.max()
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
            "better for losses and errors)."
        )
        st.markdown("**Best per metric**")
        st.dataframe(best, hide_index=True, key="cmp_best")

varying = compare_charts.params_table(runs, only_differences=True)
with parallel_tab, data.shown_errors("drawing parallel coordinates"):
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

with scatter_tab, data.shown_errors("drawing the scatter"):
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
