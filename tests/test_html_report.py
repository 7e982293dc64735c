"""The shareable HTML report: one self-contained file (plotly.js inlined, no network) with the
run's config, curves, evaluation and importance, and every user-typed text escaped."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs
from typer.testing import CliRunner

from db.writes import run_edits
from engine.cli.main import app
from engine.core.run_files import read_report
from engine.data.datasets import ingest_bytes
from tests.support.data import completed_run
from tests.support.pages import open_page

HOSTILE_NAME = "<script>alert(1)</script> & co"
HOSTILE_CLASS = "<img src=x onerror=alert(2)>"


def figures(html: str) -> list[list[dict]]:
    """The data (list of traces) of every `Plotly.newPlot(id, data, layout, config)` call."""
    decoder = json.JSONDecoder()
    out = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', html):
        data, _ = decoder.raw_decode(html, match.end())
        out.append(data)
    return out


def hostile_dataset(settings, db) -> str:  # noqa: ANN001
    rng = np.random.default_rng(1)
    x = rng.normal(size=120)
    frame = pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=120),
            "label": np.where(x > 0, HOSTILE_CLASS, "plain"),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return ingest_bytes(
        settings, db, buffer.getvalue().encode(), filename="h.csv", name="hostile", target="label"
    ).name


def test_report_is_self_contained_with_charts_and_escaped_text(settings, db, tmp_path):
    run_id = completed_run(settings, db, hostile_dataset(settings, db), epochs=4)
    run_edits.rename_run(db, run_id, HOSTILE_NAME)
    run_edits.set_notes(db, [run_id], "</div><b>note</b>")
    output = tmp_path / "share" / "run.html"

    result = CliRunner().invoke(app, ["runs", "report", str(run_id), "--output", str(output)])
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf-8")

    # Offline: plotly.js is inside the file, nothing is fetched from elsewhere.
    assert get_plotlyjs() in html
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)

    # User text is escaped: in the page by Jinja, in the chart data by plotly's JSON encoder.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "&lt;/div&gt;&lt;b&gt;note&lt;/b&gt;" in html
    assert "<script>alert(1)" not in html and "<b>note</b>" not in html
    assert HOSTILE_CLASS not in html
    assert "\\u003cimg src=x onerror=alert(2)\\u003e" in html

    report = read_report(settings, run_id)
    traces = [trace for data in figures(html) for trace in data]
    names = {t.get("name") for t in traces}
    assert {"train loss", "val loss"} <= names  # the curves
    heatmap = next(t for t in traces if t["type"] == "heatmap")
    assert heatmap["z"] == [[float(v) for v in row] for row in report["confusion_matrix"]]
    assert heatmap["x"] == report["classes"]
    importance = next(t for t in traces if t.get("orientation") == "h")
    assert importance["y"] == [f["name"] for f in report["importance"]["features"]]
    assert any("(AUC" in t.get("name", "") for t in traces)  # the ROC curve
    assert HOSTILE_CLASS in heatmap["x"]  # the class name survives, as data
    # Config and metrics as tables.
    assert "<td>learning_rate</td>" in html and "test accuracy" in html

    # The Run page offers the same file as a download.
    at = open_page("views/run_detail.py", run=str(run_id))
    labels = [b.proto.label for b in at.get("download_button")]
    assert "HTML report" in labels


def test_report_of_a_missing_run_is_a_clear_error(settings, db, tmp_path):
    result = CliRunner().invoke(app, ["runs", "report", "999", "--output", str(tmp_path / "r")])
    assert result.exit_code != 0 and "No run 999" in result.output
    assert not (tmp_path / "r").exists()
