"""Dataset versions (issue 21): edits make immutable versions (base + one patch), runs train on
the exact version they name, the migration makes every existing dataset version 1."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import text

from db import runs as run_store
from db import sweeps as sweep_store
from db.audit import list_entries
from db.session import make_engine
from db.writes import runs as run_writes
from engine.core.errors import DatasetError
from engine.data.datasets import ingest_bytes
from engine.data.version_rows import stored_version
from engine.data.versions import load_version_table
from engine.services import dataset_versions as dv
from engine.services import sweeps
from engine.services.permissions import Actor, PermissionDenied
from tests.support.commands import cli
from tests.support.data import completed_run
from tests.support.pages import button, open_page, texts

ADMIN = Actor("ada", "admin")


def _iris(db):
    record, version = dv.resolve(db, "iris")
    return record, version


def test_relabel_and_exclude_through_the_cli_with_diff_counts(settings, db, demo_datasets):
    done = cli(
        "datasets",
        "relabel",
        "iris",
        "--row",
        "0",
        "--label",
        "virginica",
        "--row",
        "1",
        "--label",
        "versicolor",
        "--note",
        "two typos",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("iris@2: version 2, 150 rows")
    done = cli("datasets", "exclude", "iris", "--row", "7", "--row", "8", "--row", "9")
    assert done.returncode == 0, done.stderr
    assert "iris@3" in done.stdout and "147 rows" in done.stdout

    listed = json.loads(cli("datasets", "versions", "iris", "--json").stdout)
    assert [v["number"] for v in listed] == [1, 2, 3]
    assert listed[1]["diff"] == {"added": 0, "removed": 0, "relabelled": 2}
    assert listed[1]["note"] == "two typos" and listed[1]["parent_number"] == 1
    assert listed[2]["diff"] == {"added": 0, "removed": 3, "relabelled": 0}
    assert listed[2]["class_counts"] == {"setosa": 45, "versicolor": 51, "virginica": 51}

    out = json.loads(cli("datasets", "diff", "iris", "1", "3", "--json").stdout)
    assert (out["added"], out["removed"], out["relabelled"]) == (0, 3, 2)
    assert out["removed_rows"] == ["7", "8", "9"]
    assert {"row_id": "0", "from": "setosa", "to": "virginica"} in out["relabelled_rows"]

    # Every edit is in the audit log, by the CLI's user, with what it changed.
    edits = [e for e in list_entries(db) if e.action == "edit"]
    assert len(edits) == 2 and all(e.target.endswith(" iris") for e in edits)
    assert any("2 relabelled" in e.detail and "two typos" in e.detail for e in edits)

    # Earlier versions are unchanged: version 1 still reads the original labels.
    record, _ = _iris(db)
    v1 = dv.load_version_frame(settings, db, record.id, 1)
    assert len(v1) == 150 and v1.loc[0, "species"] == "setosa"
    v3 = dv.load_version_frame(settings, db, record.id, 3)
    assert v3.loc[v3.row_id == "0", "species"].item() == "virginica"
    assert not v3.row_id.isin(["7", "8", "9"]).any()


def test_export_a_version_to_csv_and_parquet(settings, db, demo_datasets, tmp_path):
    cli("datasets", "exclude", "iris", "--row", "3")
    done = cli("datasets", "export", "iris", "--version", "1", "--output", str(tmp_path / "a.csv"))
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "a.csv")) == 150
    done = cli("datasets", "export", "iris@2", "--output", str(tmp_path / "b.parquet"))
    assert done.returncode == 0, done.stderr
    frame = pd.read_parquet(tmp_path / "b.parquet")
    assert len(frame) == 149 and "3" not in set(frame["row_id"])
    bad = cli("datasets", "export", "iris", "--output", str(tmp_path / "c.zip"))
    assert bad.returncode == 1 and "csv or .parquet" in bad.stderr


@pytest.mark.parametrize(
    ("dataset", "label", "phrase"),
    [("iris", "zebra", "not a class of this dataset"), ("diabetes", "lots", "not a number")],
)
def test_a_bad_label_is_refused_with_nothing_stored(
    settings, db, demo_datasets, dataset, label, phrase
):
    done = cli("datasets", "relabel", dataset, "--row", "0", "--label", label)
    assert done.returncode == 1 and phrase in done.stderr and "Traceback" not in done.stderr
    record, version = dv.resolve(db, dataset)
    assert version.number == 1 and len(dv.list_versions(db, record.id)) == 1
    assert not [e for e in list_entries(db) if e.action == "edit"]
    unknown = cli("datasets", "exclude", dataset, "--row", "99999")
    assert unknown.returncode == 1 and "has no row '99999'" in unknown.stderr


def test_a_regression_target_takes_a_number(settings, db, demo_datasets):
    record, _ = dv.resolve(db, "diabetes")
    version = dv.edit(settings, db, ADMIN, record.id, relabel={"4": "12.5"}, exclude=[], note="")
    frame = dv.load_version_frame(settings, db, record.id, version.number)
    assert frame.loc[frame.row_id == "4", record.target].item() == 12.5
    assert version.class_counts == {} and version.diff["relabelled"] == 1


def test_viewers_cannot_edit(settings, db, demo_datasets):
    record, _ = _iris(db)
    with pytest.raises(PermissionDenied, match="viewer"):
        dv.edit(settings, db, Actor("vic", "viewer"), record.id, relabel={}, exclude=["1"], note="")
    assert len(dv.list_versions(db, record.id)) == 1


def test_an_edit_that_changes_nothing_makes_no_version(settings, db, demo_datasets):
    record, _ = _iris(db)
    with pytest.raises(DatasetError, match="leave version 1"):
        dv.edit(settings, db, ADMIN, record.id, relabel={"0": "setosa"}, exclude=[], note="")
    assert len(dv.list_versions(db, record.id)) == 1


def test_runs_on_v1_and_v2_each_train_on_their_own_data(settings, db, demo_datasets):
    record, _ = _iris(db)
    excluded = [str(i) for i in range(0, 150, 10)]  # 15 rows
    v2 = dv.edit(
        settings, db, ADMIN, record.id, relabel={"1": "virginica"}, exclude=excluded, note="drop"
    )
    assert v2.number == 2
    first = completed_run(settings, db, "iris@1")
    second = completed_run(settings, db, "iris")  # NAME alone = the latest
    assert run_store.get_run(db, first).dataset_version == 1
    assert run_store.get_run(db, second).dataset_version == 2
    shown = json.loads(cli("runs", "show", str(second), "--json").stdout)
    assert shown["dataset_version"] == 2

    # The data each trained on: version 2 lacks the excluded rows and has the new label.
    frame = load_version_table(settings, stored_version(db, record.id, 2))
    assert len(frame) == 135 and not set(frame.index) & {int(e) for e in excluded}
    assert frame.loc[1, "species"] == "virginica"
    assert len(load_version_table(settings, stored_version(db, record.id, 1))) == 150
    reports = {
        rid: json.loads((settings.run_dir(rid) / "report.json").read_text())
        for rid in (first, second)
    }
    assert sum(reports[first]["split_sizes"].values()) == 150
    assert sum(reports[second]["split_sizes"].values()) == 135

    # Reproducible: a later edit does not change what version 1 or 2 hold; training again on
    # version 1 gives the same test metrics.
    dv.edit(settings, db, ADMIN, record.id, relabel={"2": "versicolor"}, exclude=[], note="")
    again = completed_run(settings, db, "iris@1")
    metrics = {rid: run_store.get_run(db, rid).summary for rid in (first, again)}
    test_keys = [k for k in metrics[first] if k.startswith("test_")]
    assert test_keys
    for key in test_keys:
        assert metrics[again][key]["last"] == pytest.approx(metrics[first][key]["last"])
    runs_on_v2 = cli("runs", "list", "--dataset", "iris@2", "--json")
    assert [r["id"] for r in json.loads(runs_on_v2.stdout)] == [second]


def test_a_new_upload_becomes_the_next_version(settings, db, demo_datasets, tmp_path):
    record, _ = _iris(db)
    frame = dv.load_version_frame(settings, db, record.id, 1).drop(columns=["row_id"])
    frame.iloc[:140].to_csv(tmp_path / "iris.csv", index=False)
    refused = cli(
        "datasets", "add", str(tmp_path / "iris.csv"), "--name", "iris", "--target", "species"
    )
    assert refused.returncode == 1 and "already exists" in refused.stderr
    done = cli(
        "datasets",
        "add",
        str(tmp_path / "iris.csv"),
        "--name",
        "iris",
        "--target",
        "species",
        "--new-version",
    )
    assert done.returncode == 0, done.stderr
    versions = dv.list_versions(db, record.id)
    assert [v.number for v in versions] == [1, 2] and versions[1].n_rows == 140
    assert versions[1].diff == {"added": 0, "removed": 10, "relabelled": 0}
    assert versions[1].base_path != versions[0].base_path
    assert [
        d for d in cli("datasets", "list", "--json").stdout.split('"name"') if "new-version" in d
    ] == []  # the temporary row is gone
    assert len(dv.load_version_frame(settings, db, record.id, 2)) == 140


def test_new_names_cannot_hold_an_at_sign(settings, db):
    with pytest.raises(DatasetError, match="cannot contain '@'"):
        ingest_bytes(settings, db, b"a,y\n1,0\n2,1\n", filename="t.csv", name="t@2", target="y")


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, format="PNG")
    return out.getvalue()


def test_image_versions_relabel_exclude_and_export(settings, db, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(6):
            archive.writestr(f"red/{i}.png", _png((200 + i, 0, 0)))
            archive.writestr(f"blue/{i}.png", _png((0, 0, 200 + i)))
    record = ingest_bytes(
        settings, db, buffer.getvalue(), filename="rb.zip", name="rb", target=None
    )
    items = dict(dv.image_items(settings, db, record.id, 1))
    row = next(r for r, label in items.items() if label == "red")
    gone = next(r for r, label in items.items() if label == "blue")
    v2 = dv.edit(settings, db, ADMIN, record.id, relabel={row: "blue"}, exclude=[gone], note="")
    after = dict(dv.image_items(settings, db, record.id, 2))
    assert after[row] == "blue" and gone not in after and len(after) == 11
    assert v2.class_counts == {"blue": 6, "red": 5}
    out = dv.export_version(settings, db, record.id, 2, tmp_path / "rb.zip")
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert len(names) == 11 and sum(n.startswith("blue/") for n in names) == 6


def test_the_migration_keeps_datasets_and_runs_and_makes_version_1(empty_database_url):
    from alembic import command

    from db.migrate import alembic_config, upgrade_to_head

    old = make_engine(empty_database_url)
    cfg = alembic_config(old)
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0013_api_tokens")
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, kind, task, target, schema, n_rows, n_columns,"
                " sha256, path, source_filename, created_at) VALUES (4, 'old', 'tabular',"
                " 'classification', 'y', '{\"class_counts\": {\"a\": 2, \"b\": 1}}', 3, 2,"
                " 'abc', 'datasets/x', 'f.csv', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (id, name, dataset_id, config, status, cancel_requested,"
                " created_at, notes, project_id, archived, attempts, source) VALUES (9, 'r', 4,"
                " '{}', 'completed', false, '2026-01-01', 'kept', 1, false, 0, 'builtin')"
            )
        )
    upgrade_to_head(old)
    from db import dataset_versions as version_store
    from db import datasets as dataset_store

    assert dataset_store.get_dataset(old, 4).name == "old"
    (version,) = version_store.list_versions(old, 4)
    assert (version.number, version.n_rows, version.base_path) == (1, 3, "datasets/x")
    assert version.class_counts == {"a": 2, "b": 1} and version.patch["labels"] == {}
    run = run_store.get_run(old, 9)
    assert run.dataset_version == 1 and run.notes == "kept" and run.status == "completed"
    assert version_store.versions_used_by_runs(old) == {(4, 1): 1}
    old.dispose()


def test_pages_offer_link_filter_and_compare_versions(settings, db, demo_datasets):
    from engine.report.compare_charts import dataset_warning
    from engine.services.launch import submit_run
    from tests.support.pages import button, open_page, texts

    record, _ = _iris(db)
    dv.edit(settings, db, ADMIN, record.id, relabel={}, exclude=["4"], note="")
    on_v1 = submit_run(db, "iris@1", {}, name="on v1")

    # New run: the version picker offers both, the latest first; the run records the choice.
    at = open_page("views/new_run.py", dataset=str(record.id))
    picker = next(s for s in at.selectbox if s.label == "Dataset version")
    assert picker.options == ["version 2 (latest)", "version 1"]
    picker.set_value(1).run()
    button(at, "Start training").click().run()
    assert not at.exception
    newest = max(r.id for r in run_store.list_runs(db))
    assert run_store.get_run(db, newest).dataset_version == 1
    on_v2 = submit_run(db, "iris", {}, name="on v2")

    # The Run page names and links the exact version.
    at = open_page("views/run_detail.py", run=str(on_v2))
    assert "dataset iris version 2" in texts(at.caption)
    # Runs: one dataset chosen, filter by its version (also from a link).
    at = open_page("views/runs.py", dataset=str(record.id), version="2")
    assert not at.exception
    shown = "\n".join(str(f.value) for f in at.dataframe)
    assert "on v2" in shown and "on v1" not in shown

    # Compare: a sentence when the runs used different versions of one dataset.
    runs = [run_store.get_run(db, i) for i in (on_v1, on_v2)]
    warning = dataset_warning(runs)
    assert warning and "different versions of dataset iris" in warning
    assert dataset_warning([runs[0], run_store.get_run(db, newest)]) is None


def test_label_studio_round_trip(settings, db, demo_datasets, tmp_path):
    from tests.support.commands import ROOT

    record, _ = dv.resolve(db, "support_tickets")
    done = cli("datasets", "export", "support_tickets", "--output", str(tmp_path / "t.json"))
    assert done.returncode == 0, done.stderr
    tasks = json.loads((tmp_path / "t.json").read_text())
    frame = dv.load_version_frame(settings, db, record.id, 1)
    assert len(tasks) == len(frame)
    first = tasks[0]
    assert first["data"]["row_id"] == "0" and first["data"]["text"] == frame.loc[0, "ticket"]
    (result,) = first["predictions"][0]["result"]
    assert result["value"] == {"choices": [frame.loc[0, "intent"]]}
    config = (tmp_path / "t.json.config.xml").read_text()
    assert '<Choices name="label" toName="text"' in config and 'value="refund"' in config

    # Label Studio's own export: row 0 relabelled, row 1 by two annotators (the later wins),
    # row 2 cancelled, one task without a Seedlab row id.
    done = cli(
        "datasets",
        "import-labels",
        "support_tickets",
        str(ROOT / "tests" / "data" / "label_studio_export.json"),
    )
    assert done.returncode == 0, done.stderr
    assert "support_tickets@2" in done.stdout and "~2 relabelled" in done.stdout
    assert "1 task(s) skipped: without row id" in done.stderr
    v2 = dv.load_version_frame(settings, db, record.id, 2).set_index("row_id")["intent"]
    assert (v2["0"], v2["1"]) == ("refund", "account")
    assert v2["2"] == frame.loc[2, "intent"]


def test_the_page_adds_an_upload_under_a_taken_name_as_the_next_version(
    settings, db, demo_datasets
):
    """The Datasets page: a taken name is refused as before, unless "Add it as the next
    version" is ticked; then the file becomes version 2 and version 1 stays as it was."""
    record, _ = _iris(db)
    frame = dv.load_version_frame(settings, db, record.id, 1).drop(columns=["row_id"])
    raw = frame.iloc[:120].to_csv(index=False).encode()
    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(("iris.csv", raw, "text/csv")).run()
    box = next(s for s in at.selectbox if str(s.key).startswith("upload_target_"))
    box.set_value("species").run()
    ticks = [c for c in at.checkbox if str(c.key).startswith("upload_new_version_")]
    assert len(ticks) == 1 and "next version of iris" in ticks[0].label
    button(at, "Add dataset").click().run()
    assert "already exists" in texts(at.error)  # not ticked: refused, nothing stored
    assert [v.number for v in dv.list_versions(db, record.id)] == [1]
    tick = next(c for c in at.checkbox if str(c.key).startswith("upload_new_version_"))
    tick.check().run()
    button(at, "Add dataset").click().run()
    assert not at.error, texts(at.error)
    versions = dv.list_versions(db, record.id)
    assert [v.number for v in versions] == [1, 2] and versions[1].n_rows == 120
    assert versions[1].diff == {"added": 0, "removed": 30, "relabelled": 0}
    assert len(dv.load_version_frame(settings, db, record.id, 1)) == len(frame)


def test_a_sweep_trains_every_trial_on_the_version_it_began_on(settings, db, demo_datasets):
    """A version added while a sweep runs is not picked up by its later trials (their scores
    would not compare); `NAME@N` starts a sweep on an older version."""
    spec = {"space": {"learning_rate": [0.01, 0.1]}, "sampler": "grid", "parallelism": 1}
    sweep_id = sweeps.submit_sweep(db, "iris", spec, base={"epochs": 1})
    sweeps.advance(db, sweep_store.get_sweep(db, sweep_id))  # the first trial, on iris@1
    record, _ = _iris(db)
    dv.edit(settings, db, ADMIN, record.id, relabel={}, exclude=["0"], note="one row less")
    first = run_store.get_run(db, sweep_store.trial_run_ids(db, sweep_id)[0])
    run_writes.claim_next_run(db, "w")
    run_writes.finish_run(db, first.id, "completed")
    sweeps.advance(db, sweep_store.get_sweep(db, sweep_id))  # the second, after iris@2 exists
    trials = [run_store.get_run(db, i) for i in sweep_store.trial_run_ids(db, sweep_id)]
    assert len(trials) == 2 and {t.dataset_version for t in trials} == {1}
    assert sweep_store.get_sweep(db, sweep_id).dataset_version == 1

    older = sweeps.submit_sweep(db, "iris@1", spec, base={"epochs": 1})
    newer = sweeps.submit_sweep(db, "iris", spec, base={"epochs": 1})
    assert sweep_store.get_sweep(db, older).dataset_version == 1
    assert sweep_store.get_sweep(db, newer).dataset_version == 2
