"""Bidirectional control characters in names, tags, notes and column names are shown, never
obeyed (engine/core/display_text.py): the pages and the HTML report show a marker such as
⟨U+202E⟩, right-to-left text is isolated but left as written, and names need no backslashes."""

from __future__ import annotations

import pytest

from dashboard.data import md_code, md_text
from db.writes import run_edits
from engine.core.display_text import (
    BIDI_CONTROLS,
    FIRST_STRONG_ISOLATE,
    POP_DIRECTIONAL_ISOLATE,
    display_text,
)
from engine.data.datasets import ingest_bytes
from engine.services.launch import submit_run
from engine.services.run_report import run_report_html
from tests.support.data import completed_run
from tests.support.pages import open_page, texts

RLO = "\u202e"
# Shown as "txt.exe" by a browser that obeys the override: a program posing as a text file.
SPOOFED_TAG = f"report{RLO}exe.txt"
ARABIC = "نموذج التصنيف"  # "classification model"
HEBREW = "מודל ראשון"  # "first model"


def isolated(text: str) -> str:
    return FIRST_STRONG_ISOLATE + text + POP_DIRECTIONAL_ISOLATE


@pytest.mark.parametrize("control", list(BIDI_CONTROLS))
def test_every_bidi_control_becomes_a_visible_marker(control):
    shown = display_text(f"a{control}b")
    assert shown == f"a⟨U+{ord(control):04X}⟩b"
    assert not set(shown) & set(BIDI_CONTROLS)


def test_the_override_trick_is_shown_as_typed():
    assert display_text(SPOOFED_TAG) == "report⟨U+202E⟩exe.txt"


@pytest.mark.parametrize("text", [ARABIC, HEBREW, f"v2 {ARABIC} (test)", "٣ ١٢"])
def test_right_to_left_text_is_isolated_and_left_as_written(text):
    assert display_text(text) == isolated(text)


def test_controls_inside_real_right_to_left_text_are_shown_too():
    assert display_text(f"{HEBREW}\u200f!") == isolated(f"{HEBREW}⟨U+200F⟩!")


@pytest.mark.parametrize("text", ["iris", "sepal length (cm)", "Zürich café", "数据集", "", "a_b"])
def test_left_to_right_text_is_unchanged(text):
    assert display_text(text) == text


def test_names_in_markdown_and_code_spans():
    # Markdown drops the escaping backslashes when it renders.
    assert md_text(SPOOFED_TAG).replace("\\", "") == "report⟨U+202E⟩exe.txt"
    # A code span shows backslashes, so names in one are not escaped: they need no escaping.
    assert md_code("sepal length (cm)") == "`sepal length (cm)`"
    assert md_code("a_b*c") == "`a_b*c`"
    assert md_code("odd`name") == "``odd`name``"  # a longer fence than the backtick inside
    assert md_code("`edge") == "`` `edge ``"  # a space where a backtick would touch the fence


def _spoofed_run(settings, db) -> tuple[int, int]:  # noqa: ANN001
    raw = f"x,{RLO}gnp.tpircs,label\n1,2,a\n2,3,b{RLO}c\n3,4,a\n4,5,b{RLO}c\n".encode()
    dataset = ingest_bytes(settings, db, raw, filename="s.csv", name=f"{ARABIC} 1", target="label")
    run_id = submit_run(db, dataset.id, {"epochs": 1}, name=f"run{RLO}1", tags=[SPOOFED_TAG])
    run_edits.set_notes(db, [run_id], f"note {RLO}one")
    return dataset.id, run_id


def _no_raw_controls(values: list[str]) -> None:
    for value in values:
        assert not set(value) & set(BIDI_CONTROLS) - {FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE}
        assert value.count(FIRST_STRONG_ISOLATE) == value.count(POP_DIRECTIONAL_ISOLATE)


def test_a_spoofed_tag_is_shown_neutralised_on_the_run_page(settings, db):
    _, run_id = _spoofed_run(settings, db)
    at = open_page("views/run_detail.py", run=str(run_id))
    captions = texts(at.caption).replace("\\", "")  # as rendered: escapes dropped
    assert "run⟨U+202E⟩1" in texts(at.title).replace("\\", "")
    assert "#report⟨U+202E⟩exe.txt · note ⟨U+202E⟩one" in captions, captions
    _no_raw_controls(
        [str(e.value) for kind in ("title", "caption", "markdown") for e in at.get(kind)]
    )


def test_a_spoofed_tag_is_shown_neutralised_in_the_runs_table(settings, db):
    _, run_id = _spoofed_run(settings, db)
    at = open_page("views/runs.py")
    [table] = [d.value for d in at.dataframe if "tags" in d.value.columns]
    row = table[table["id"] == run_id].iloc[0]
    assert list(row["tags"]) == ["report⟨U+202E⟩exe.txt"]
    assert row["name"] == "run⟨U+202E⟩1" and row["note"] == "note ⟨U+202E⟩one"
    assert row["dataset"] == isolated(f"{ARABIC} 1")
    [tag_filter] = [m for m in at.multiselect if m.key == "rf_tag"]
    assert tag_filter.options == ["report⟨U+202E⟩exe.txt"]


def test_column_names_are_shown_neutralised_on_the_datasets_page(settings, db):
    dataset_id, _ = _spoofed_run(settings, db)
    at = open_page("views/datasets.py", dataset=str(dataset_id))
    shown = [list(d.value.columns) for d in at.dataframe] + [
        list(d.value["column"]) for d in at.dataframe if "column" in d.value.columns
    ]
    assert any("⟨U+202E⟩gnp.tpircs" in columns for columns in shown), shown
    _no_raw_controls([c for columns in shown for c in map(str, columns)])
    assert isolated(f"{ARABIC} 1") in texts(at.subheader).replace("\\", "")
    [stored] = [d.value for d in at.dataframe if "task" in d.value.columns]
    assert list(stored["name"]) == [isolated(f"{ARABIC} 1")]
    # Cells too (the preview, the data browser): shown with a marker, never a raw override.
    tables = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert len(tables) == 2
    for table in tables:
        assert "b⟨U+202E⟩c" in set(table["label"]), list(table["label"])
        _no_raw_controls([str(v) for v in table["label"]])


def test_the_html_report_shows_controls_and_isolates_right_to_left(settings, db):
    _, run_id = _spoofed_run(settings, db)
    html = run_report_html(settings, db, run_id)
    assert RLO not in html
    assert "#report⟨U+202E⟩exe.txt" in html and "run⟨U+202E⟩1" in html
    assert isolated(f"dataset {ARABIC} 1") in html  # the fact naming it, as written, isolated


def test_batch_prediction_names_its_columns_without_backslashes(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris", epochs=1)
    at = open_page("views/playground.py", run=str(run_id))
    [needs] = [c for c in texts(at.caption).splitlines() if "The CSV needs" in c]
    # Code spans show what is in them: an escaped "\(cm\)" would show its backslashes.
    assert "`sepal length (cm)`" in needs and "\\" not in needs, needs
