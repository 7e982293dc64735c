"""A run as one self-contained HTML file (config, curves, evaluation, importance) to send to people
without access to Seedlab: it opens offline, with plotly.js inlined rather than from a CDN.

Everything a user typed (run name, notes, tags, class names, table values) goes through
display_text (bidi controls shown, right-to-left text isolated) and Jinja's autoescaping; figure
data goes through plotly's JSON encoder, which writes `<` as `\\u003c`, so no text can close a
script tag. No Streamlit here: the CLI and the Run page both call it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from db.records import RunRecord
from engine.core import catalog, verdicts
from engine.core.catalog import EPOCH_METRICS, TEST_METRICS, metric_label
from engine.core.display_text import display_text
from engine.core.formatting import format_duration
from engine.report import charts, report_charts
from engine.report.importance_chart import caption as importance_caption
from engine.report.importance_chart import importance_bars

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHART_CONFIG = {"displaylogo": False, "responsive": True}


def _shown(value: Any) -> Any:  # noqa: ANN401
    """Every text the template prints, before autoescaping: bidi controls made visible and
    right-to-left text isolated (engine/core/display_text.py); our own markup stays as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return display_text(value)
    return value


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_shown,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("run_report.html.j2")


def _chart(fig: go.Figure, *, height: int = 360) -> Markup:
    fig.update_layout(template="plotly_white")
    if fig.layout.height is None:
        fig.update_layout(height=height)
    html = pio.to_html(fig, full_html=False, include_plotlyjs=False, config=CHART_CONFIG)
    return Markup(html)  # plotly's own output: data JSON-escaped


def _value(value: Any) -> str:  # noqa: ANN401
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _setting(value: Any) -> str:  # noqa: ANN401
    """A config value as typed in a config file (0.1, not 0.1000)."""
    return value if isinstance(value, str) else json.dumps(value)


def _curves(history: pd.DataFrame, task: str) -> list[dict[str, Any]]:
    keys = EPOCH_METRICS.get(task, [])
    if history.empty:
        return []
    present = set(history["key"])
    loss = [k for k in keys if k.endswith("_loss") and k in present]
    quality = [k for k in keys if not k.endswith("_loss") and k in present]
    out = []
    if loss:
        out.append({"title": "Loss", "html": _chart(charts.metric_curves(history, loss))})
    if quality:
        title = ", ".join(metric_label(k) for k in quality)
        out.append({"title": title, "html": _chart(charts.metric_curves(history, quality))})
    return out


def _evaluation(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    if report.get("task") == "regression":
        predictions = report.get("predictions") or {}
        true, predicted = predictions.get("true") or [], predictions.get("predicted") or []
        if true and len(true) == len(predicted):
            out.append(
                {
                    "title": "Predicted vs actual",
                    "html": _chart(report_charts.predicted_vs_actual(true, predicted)),
                }
            )
            out.append(
                {"title": "Residuals", "html": _chart(report_charts.residuals(true, predicted))}
            )
        return out
    matrix, classes = report.get("confusion_matrix"), report.get("classes")
    if matrix and classes:
        out.append(
            {"title": "Confusion matrix", "html": _chart(charts.confusion_matrix(matrix, classes))}
        )
    if report.get("per_class"):
        out.append(
            {
                "title": "Per class",
                "html": _chart(report_charts.per_class_bars(report["per_class"])),
            }
        )
    if report.get("roc_curves"):
        out.append(
            {"title": "ROC curve", "html": _chart(report_charts.roc_curves(report["roc_curves"]))}
        )
    if report.get("pr_curves"):
        out.append(
            {
                "title": "Precision–recall curve",
                "html": _chart(report_charts.pr_curves(report["pr_curves"])),
            }
        )
    return out


def _mistakes(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [r for r in report.get("worst_mistakes") or [] if isinstance(r, Mapping)]
    if not rows:
        return [], []
    columns: list[str] = []
    table: list[dict[str, Any]] = []
    for row in rows:
        entry = {k: v for k, v in row.items() if k not in ("input", "position")}
        inputs = row.get("input") if isinstance(row.get("input"), Mapping) else {}
        entry.update({f"input · {k}": v for k, v in inputs.items()})
        table.append(entry)
        columns += [c for c in entry if c not in columns]
    return columns, [[_value(entry.get(c)) for c in columns] for entry in table]


def _verdict(run: RunRecord) -> dict[str, Any]:
    """The badge, the one-line verdict, its warnings and baselines (engine/core/verdicts.py)."""
    status = verdicts.status_text(run.status, run.verdict)
    warned = run.status == "completed" and status != "completed"
    out: dict[str, Any] = {
        "status": status,
        "badge_class": ("warned" if run.verdict else "none") if warned else run.status,
        "summary": None,
        "warnings": [],
        "baselines": [],
    }
    if not isinstance(run.verdict, dict):
        if run.status == "completed":
            out["summary"] = (
                "none: this run was not compared with baselines (it finished before Seedlab "
                "did that)."
            )
        return out
    out["summary"] = run.verdict.get("summary")
    label = verdicts.warning_label
    out["warnings"] = [
        {**w, "label": label(w.get("code", "")).capitalize()}
        for w in verdicts.warnings_of(run.verdict)
    ]
    baseline = run.verdict.get("baseline") or {}
    for b in (baseline.get("trivial"), baseline.get("classical")):
        if isinstance(b, Mapping):
            scores = [
                f"{metric_label(k)} {_value(v)}"
                for k, v in (b.get("metrics") or {}).items()
                if k in ("test_accuracy", "test_balanced_accuracy", "test_rmse", "test_r2")
            ]
            out["baselines"].append(f"{b.get('name', '?')} ({', '.join(scores)})")
    return out


def build_run_report(
    run: RunRecord,
    history: pd.DataFrame,
    report: Mapping[str, Any] | None,
    *,
    task: str,
    generated_at: datetime | None = None,
) -> str:
    """The HTML document (pure: everything it shows is passed in)."""
    report = report or {}
    facts = [f"dataset {run.dataset_name}", task]
    if run.device:
        facts.append(f"on {run.device}")
    facts.append(f"created {run.created_at:%Y-%m-%d %H:%M} UTC")
    if run.duration_s is not None:
        facts.append(f"took {format_duration(run.duration_s)}")
    known = TEST_METRICS.get(task, [])
    metrics = {k: run.last(k) for k in known if k in run.summary}
    metrics.update({k: v for k, v in (report.get("metrics") or {}).items() if k not in metrics})
    headline = catalog.HEADLINE_METRIC.get(task, (None, True))[0]
    cards = [
        {"label": metric_label(k), "value": _value(metrics[k])}
        for k in sorted(metrics, key=lambda k: k != headline)[:4]
    ]
    importance = report.get("importance")
    importance_part = None
    if isinstance(importance, Mapping) and importance.get("features"):
        importance_part = {
            "html": _chart(importance_bars(importance)),
            "caption": importance_caption(importance),
        }
    columns, mistakes = _mistakes(report)
    verdict = _verdict(run)
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return _template().render(
        run=run,
        verdict=verdict,
        facts=facts,
        cards=cards,
        curves=_curves(history, task),
        metrics=[{"label": metric_label(k), "value": _value(v)} for k, v in metrics.items()],
        n_test=f"{int(report['n_test']):,}" if report.get("n_test") else None,
        evaluation=_evaluation(report),
        mistakes_title=(
            "Largest errors" if report.get("task") == "regression" else "Worst mistakes"
        ),
        mistakes_columns=columns,
        mistakes=mistakes,
        importance=importance_part,
        config=[(k, _setting(v)) for k, v in sorted(run.config.items())],
        generated_at=generated,
        plotly_js=Markup(get_plotlyjs()),
    )
