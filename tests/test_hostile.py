"""The hostile-input corpus (tests/data/hostile/, tests/hostile_corpus.py): every file is
refused with one sentence that says what to do and leaves no row and no file behind; names
that look like SQL or HTML stay inert text; exports cannot run as spreadsheet formulas; and
nothing an upload holds is ever unpickled."""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import pickle
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from db import datasets as dataset_store
from db import run_query
from db import runs as run_store
from db.run_query import RunFilter
from db.writes import run_edits
from engine.core.csv_safe import escape_formulas, to_safe_csv
from engine.core.errors import ConfigError, DatasetError
from engine.data.datasets import ingest_bytes
from engine.data.image_zip import decode_image
from engine.data.stored import load_frame
from engine.services.launch import find_dataset, submit_run
from tests import hostile_corpus as corpus
from tests.support.commands import ROOT, seedlab_in_process
from tests.support.pages import open_page


def stored_state(settings, db) -> tuple[list[str], list[str]]:
    return (
        [d.name for d in dataset_store.list_datasets(db)],
        sorted(p.name for p in settings.datasets_dir.iterdir()),
    )


def assert_refused(settings, db, raw: bytes, filename: str, *phrases: str) -> str:
    before = stored_state(settings, db)
    with pytest.raises(DatasetError) as caught:
        ingest_bytes(settings, db, raw, filename=filename, name="hostile", target=None)
    message = str(caught.value)
    for phrase in phrases:
        assert phrase in message, message
    assert "\n" not in message and "Traceback" not in message
    assert stored_state(settings, db) == before, "a refused upload left something behind"
    return message


# ---------------------------------------------------------------- files that are refused

COMMITTED_REFUSALS = [
    ("latin1.csv", "not valid UTF-8 text (byte 0xe9 on line 2", "Re-save it as UTF-8"),
    ("invalid_utf8.csv", "not valid UTF-8 text (byte 0xc3 on line 3", "Re-save it as UTF-8"),
    ("mixed_encoding.csv", "on line 3", "Re-save it as UTF-8"),
    ("nested_list.parquet", "Column 'x'", "Flatten it into plain columns"),
    ("nested_struct.parquet", "Column 'where'", "struct<"),
    ("nested_after_nulls.parquet", "Column 'v'", "nested values"),
    ("zip_traversal.zip", "'cats/../../../evil.png'", "points outside the archive"),
    ("zip_traversal_backslash.zip", "points outside the archive", "Nothing was stored"),
    ("zip_absolute.zip", "'/tmp/evil.png'", "absolute path"),
    ("zip_drive_letter.zip", "'C:/evil.png'", "absolute path"),
    ("zip_symlink.zip", "'cats/link.png'", "symbolic link"),
    ("zip_lying_png.zip", "'cats/huge.png'", "decompression bomb"),
    ("zip_truncated_png.zip", "'cats/cut.png'", "does not decode as an image"),
    ("zip_not_really.zip", "not a readable ZIP archive", "Zip the class folders again"),
]


@pytest.mark.parametrize(("filename", "where", "what_to_do"), COMMITTED_REFUSALS)
def test_committed_corpus_is_refused_cleanly(settings, db, filename, where, what_to_do):
    assert_refused(settings, db, corpus.read(filename), filename, where, what_to_do)


def test_a_million_column_header_is_refused_before_parsing(settings, db):
    roomy = dataclasses.replace(settings, max_upload_mb=50)
    raw = corpus.million_columns_csv()
    message = assert_refused(roomy, db, raw, "wide.csv", "1,000,000 columns", "the limit is 5,000")
    assert "Select the columns you need" in message


def test_a_wide_parquet_is_refused_from_its_schema(settings, db):
    assert_refused(settings, db, corpus.wide_parquet(), "w.parquet", "6,000 columns")


def test_a_huge_line_is_refused_with_its_row(settings, db):
    assert_refused(
        settings, db, corpus.huge_line_csv(), "huge.csv", "3,000,000 characters (row 32)", "quote"
    )


def test_a_zip_bomb_is_refused_before_unpacking(settings, db):
    assert_refused(settings, db, corpus.zip_bomb(), "bomb.zip", "looks like a zip bomb")


def test_an_image_lying_about_its_size_never_allocates(settings):
    raw = corpus.read("lying_size.png")
    with pytest.raises(DatasetError, match="decompression bomb"):
        decode_image(raw, "lying_size.png", settings.max_image_pixels)


# ---------------------------------------------------------------- files that are fine


def test_utf16_with_a_bom_is_read_as_text(settings, db):
    record = ingest_bytes(
        settings, db, corpus.read("utf16_bom.csv"), filename="u.csv", name="u16", target="label"
    )
    frame = load_frame(settings, record)
    assert record.n_rows == 10 and set(frame["label"]) == {"aé", "bé"}


def test_formula_cells_are_stored_as_they_are(settings, db):
    record = ingest_bytes(
        settings, db, corpus.read("formula_cells.csv"), filename="f.csv", name="f", target="label"
    )
    notes = set(load_frame(settings, record)["note"])
    assert "=cmd|' /C calc'!A0" in notes and "@SUM(1,2)" in notes  # data is data


# ---------------------------------------------------------------- formulas in exports


def test_escape_formulas_quotes_text_and_keeps_numbers():
    frame = pd.DataFrame(
        {
            "text": [*corpus.FORMULAS, "-3", "+1.5e3", "plain", None],
            "number": [-1.0, 2.0, -3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            "=evil": ["a"] * 10,
        }
    )
    safe = escape_formulas(frame)
    for raw, escaped in zip(corpus.FORMULAS, safe["text"], strict=False):
        assert escaped == "'" + raw
    assert list(safe["text"][6:9]) == ["-3", "+1.5e3", "plain"] and pd.isna(safe["text"][9])
    assert safe["number"].tolist() == frame["number"].tolist()
    assert list(safe.columns) == ["text", "number", "'=evil"]
    assert frame["text"][0] == corpus.FORMULAS[0]  # the input is left alone
    assert to_safe_csv(frame, index=False).splitlines()[1].startswith("'=cmd")


def test_runs_export_escapes_names_tags_and_notes(settings, db, demo_datasets):
    from dashboard.components.run_table import TableState, export_csv

    run_id = submit_run(db, "iris", {}, name='=HYPERLINK("http://x","go")', tags=["+tag"])
    run_edits.set_notes(db, [run_id], "@SUM(1,2)")
    rows = list(csv.DictReader(io.StringIO(export_csv(db, TableState(), None))))
    assert len(rows) == 1
    assert rows[0]["name"] == '\'=HYPERLINK("http://x","go")'
    assert rows[0]["tags"] == "'+tag" and rows[0]["note"] == "'@SUM(1,2)"
    learning_rate = run_store.get_run(db, run_id).config["learning_rate"]
    assert float(rows[0]["param:learning_rate"]) == learning_rate  # numbers untouched


# ---------------------------------------------------------------- config values


BAD_CONFIGS = [
    ({"epochs": -3}, "epochs must be a whole number between 1 and 10,000; -3 is too small."),
    ({"epochs": "many"}, "epochs must be a whole number between 1 and 10,000; 'many' is not"),
    ({"epochs": True}, "epochs: needs a number, got True"),
    ({"learning_rate": float("inf")}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    (
        {"batch_size": 10**12},
        "batch_size must be a whole number between 1 and 65,536; 1,000,000,000,000 is too large.",
    ),
    ({"hidden_sizes": {"a": 1}}, "hidden_sizes must be a list of whole numbers, e.g. 128,64"),
    ({"hidden_sizes": [10**9]}, "between 1 and 8192"),
    ({"model": "<script>alert(1)</script>"}, "model: must be auto or one of"),
    ({"'; DROP TABLE runs;--": 1}, "unknown field"),
]


@pytest.mark.parametrize(("values", "message"), BAD_CONFIGS)
def test_bad_config_values_are_refused_and_queue_nothing(
    settings, db, demo_datasets, values, message
):
    with pytest.raises(ConfigError) as caught:
        submit_run(db, "iris", values)
    assert message in str(caught.value)
    assert run_query.query_runs(db, RunFilter()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "epochs=-3"],
            "epochs must be a whole number between 1 and 10,000; -3 is too small.",
        ),
        (["--set", "epochs=yes"], "epochs: needs a number, got True"),
        (
            ["--config", "wrong_type.yaml"],
            "epochs must be a whole number between 1 and 10,000; 'many' is not",
        ),
        (["--config", "python_tag.yaml"], "could not determine a constructor for the tag"),
        (["--config", "not_a_mapping.json"], "must hold a mapping"),
        (["--config", "latin1.csv"], "is not UTF-8 text"),
    ],
)
def test_cli_refuses_bad_config_in_one_line(settings, db, demo_datasets, tmp_path, args, message):
    args = [
        str(corpus.HOSTILE_DIR / a) if a.endswith((".yaml", ".json", ".csv")) else a for a in args
    ]
    result = seedlab_in_process("runs", "submit", "--dataset", "iris", *args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "pwned").exists()  # the YAML python tag never ran
    assert run_query.query_runs(db, RunFilter()) == []


# ---------------------------------------------------------------- names that look like code


def test_sql_looking_names_are_stored_literally(settings, db):
    raw = b"x,label\n1,a\n2,b\n3,a\n4,b\n"
    for name in corpus.SQL_NAMES:
        record = ingest_bytes(settings, db, raw, filename="s.csv", name=name, target="label")
        assert find_dataset(db, name).id == record.id
        run_id = submit_run(db, name, {}, name=name, tags=[name])
        assert run_store.get_run(db, run_id).name == name
    assert len(dataset_store.list_datasets(db)) == 3
    assert len(run_query.query_runs(db, RunFilter())) == 3  # the runs table is still there
    # LIKE wildcards in a search match themselves only.
    found = run_query.query_runs(db, RunFilter(name_contains="%_\\"))
    assert [r.name for r in found] == ["%_\\"]


def _markdown_bodies(at: AppTest) -> list[tuple[str, str]]:
    """(element type, body) of everything Streamlit renders as markdown."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info")
    out = []
    for kind in (*kinds, "success"):
        for element in getattr(at, kind):
            out.append((kind, str(element.value)))
    return out


_ACTIVE_MARKUP = re.compile(r"(?<!\\)(<[a-z/]|\]\(|!\[|:red\[)", re.IGNORECASE)


def assert_inert(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    for element in at.markdown:
        assert not element.proto.allow_html, element.value
    for kind, body in _markdown_bodies(at):
        # Markup that would act: a tag, a link or image, a colour directive. Escaped is fine.
        found = _ACTIVE_MARKUP.search(body)
        assert found is None, f"{kind} renders {found.group()!r} as markup: {body!r}"


def test_html_and_markdown_in_names_are_shown_as_text(settings, db):
    script, img, markdown = corpus.HTML_NAMES
    raw = b"x,label\n1,a\n2,b\n3,a\n4,b\n"
    record = ingest_bytes(settings, db, raw, filename=f"{img}.csv", name=script, target="label")
    run_id = submit_run(db, record.id, {"epochs": 1}, name=img, tags=[script])
    run_edits.set_notes(db, [run_id], markdown)
    other = submit_run(db, record.id, {"epochs": 1}, name=markdown)

    pages = [
        ("views/datasets.py", {"dataset": str(record.id)}),
        ("views/run_detail.py", {"run": str(run_id)}),
        ("views/runs.py", {}),
        ("views/compare.py", {"runs": f"{run_id},{other}"}),
    ]
    for page, query in pages:
        at = open_page(page, **query)
        assert_inert(at)
    at = open_page("views/run_detail.py", run=str(run_id))
    assert r"\<img src=x onerror=" in at.title[0].value  # there, escaped, as text


def test_an_error_quoting_a_hostile_name_is_shown_as_text(settings, db):
    script = corpus.HTML_NAMES[0]
    raw = b"x,label\n1,a\n2,b\n3,a\n4,b\n"
    ingest_bytes(settings, db, raw, filename="a.csv", name=script, target="label")
    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(("again.csv", raw, "text/csv")).run()
    [name] = [t for t in at.text_input if (t.key or "").startswith("upload_name_")]
    name.set_value(script)
    [add] = [b for b in at.button if b.label == "Add dataset"]
    add.click().run()
    errors = [e.value for e in at.error]
    assert errors and "already exists" in errors[0], errors
    assert_inert(at)
    assert len(dataset_store.list_datasets(db)) == 1


# Raw HTML on purpose, each reviewed, each with a test below that user text stays inert in it.
REVIEWED_HTML = {
    "dashboard/components/playground_output.py": "token_html: every token html.escape'd",
    "dashboard/auth.py": "the login form: static markup, no user text",
}


def test_raw_html_only_where_reviewed():
    offenders = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "dashboard").rglob("*.py")
        for line in path.read_text().splitlines()
        if "unsafe_allow_html=True" in line or "st.html(" in line
    }
    unreviewed = offenders - set(REVIEWED_HTML)
    assert unreviewed == set(), "user text could reach raw HTML: " + ", ".join(sorted(unreviewed))


def test_playground_token_html_escapes_every_token():
    from engine.report.playground_charts import token_html

    markup = token_html(corpus.HTML_NAMES, [0.5, -0.2, 0.1], [False, True, False])
    assert "<script" not in markup and "<img" not in markup
    assert "&lt;script&gt;" in markup and "&lt;img src=x onerror=" in markup


def test_the_login_form_carries_no_user_text():
    # The one raw-HTML element of dashboard/auth.py is a constant: nothing typed reaches it.
    from dashboard import auth

    assert "{" not in auth._LOGIN_FORM and "<script" not in auth._LOGIN_FORM


# ---------------------------------------------------------------- never unpickle


class _Marker:
    """Unpickling this creates a file: proof that something ran pickle on upload bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_parquet_carrying_a_pickle_is_never_unpickled(settings, db, tmp_path):
    marker = tmp_path / "unpickled"
    # The extension type pyarrow < 14 unpickled from field metadata (CVE-2023-47248).
    field = pa.field(
        "x",
        pa.int64(),
        metadata={
            b"ARROW:extension:name": b"arrow.py_extension_type",
            b"ARROW:extension:metadata": pickle.dumps(_Marker(marker)),
        },
    )
    table = pa.table({"x": [1, 2, 3, 4], "label": ["a", "b", "a", "b"]})
    table = table.cast(pa.schema([field, pa.field("label", pa.string())]))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    try:
        ingest_bytes(settings, db, buffer.getvalue(), filename="p.parquet", name="p", target=None)
    except DatasetError:
        pass  # refusing it is fine too; running it is not
    assert not marker.exists()


_UNSAFE_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
    ("joblib", "load"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("dill", "load"),
    ("dill", "loads"),
}


def _unsafe_loads(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        name = owner.id if isinstance(owner, ast.Name) else ""
        call = (name, node.func.attr)
        keywords = {k.arg: k.value for k in node.keywords}
        where = f"{path.relative_to(root)}:{node.lineno}"
        if call in _UNSAFE_CALLS:
            problems.append(f"{where} {name}.{node.func.attr}")
        elif call == ("torch", "load"):
            flag = keywords.get("weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{where} torch.load without weights_only=True")
        elif call in {("np", "load"), ("numpy", "load")}:
            flag = keywords.get("allow_pickle")
            if isinstance(flag, ast.Constant) and flag.value is True:
                problems.append(f"{where} np.load(allow_pickle=True)")
    return problems


def test_nothing_ever_unpickles():
    problems = [
        problem
        for package in ("db", "engine", "dashboard")
        for path in (ROOT / package).rglob("*.py")
        for problem in _unsafe_loads(path)
    ]
    assert problems == []


def test_the_unpickling_check_finds_what_it_looks_for(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "pickle.loads(b)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
        "np.load(p, allow_pickle=True)\ntorch.load(p, weights_only=True)\nnp.load(p)\n"
    )
    found = [p.split(" ", 1)[1] for p in _unsafe_loads(probe, root=tmp_path)]
    assert found == [
        "pickle.loads",
        "torch.load without weights_only=True",
        "torch.load without weights_only=True",
        "np.load(allow_pickle=True)",
    ]
