"""A project's pinned baseline run (schema 0018_project_baseline): pinned from the Run page or
`seedlab runs pin`, shown first on Runs whatever the filters, drawn in every Compare of the
project's runs; unpinned, or cleared when the run is deleted."""

from __future__ import annotations

from db import projects as project_store
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from engine.services import runs as run_actions
from engine.services.launch import submit_run
from engine.services.permissions import LOCAL_ADMIN
from tests.support.commands import seedlab_in_process
from tests.support.pages import button, open_page, plotly_figures, texts


def _finished(db, name: str, accuracy: float) -> int:  # noqa: ANN001
    run_id = submit_run(db, "iris", {"epochs": 2}, name=name)
    metric_writes.append_metrics(
        db, run_id, [("val_loss", 1, 1.0 - accuracy, 1.0), ("test_accuracy", 2, accuracy, 2.0)]
    )
    run_writes.finish_run(db, run_id, "completed")
    return run_id


def _baseline(db) -> int | None:  # noqa: ANN001
    return project_store.get_project(db, 1).baseline_run_id


def test_pin_from_the_run_page_then_runs_and_compare_show_it(settings, db, demo_datasets):
    base = _finished(db, "the-baseline", 0.7)
    a, b = _finished(db, "a", 0.8), _finished(db, "b", 0.9)

    at = open_page("views/run_detail.py", run=str(base))
    button(at, "Pin as baseline").click().run()
    assert not at.exception and _baseline(db) == base
    assert "Pinned as the project's baseline." in texts(at.success)
    assert [b.label for b in at.button if "baseline" in b.label] == ["Unpin baseline"]

    # Runs: first, above the list, even when the list's filter leaves it out.
    at = open_page("views/runs.py", q="zzz-matches-nothing")
    shown = texts(at.markdown)
    assert f"**Baseline** #{base} the\\-baseline · completed · test accuracy 70.0 %" in shown

    # Compare of two other runs draws the baseline too, named as such.
    at = open_page("views/compare.py", runs=f"{a},{b}", metric="val_loss")
    names = [t["name"] for f in plotly_figures(at) for t in f["data"]]
    assert names == [f"#{base} the-baseline (baseline)", f"#{a} a", f"#{b} b"]

    # Unpinned from the Run page: gone from both.
    at = open_page("views/run_detail.py", run=str(base))
    button(at, "Unpin baseline").click().run()
    assert _baseline(db) is None
    assert "**Baseline**" not in texts(open_page("views/runs.py").markdown)
    at = open_page("views/compare.py", runs=f"{a},{b}", metric="val_loss")
    assert len([t for f in plotly_figures(at) for t in f["data"]]) == 2


def test_cli_pins_and_unpins_and_deleting_the_run_clears_it(settings, db, demo_datasets):
    first, second = _finished(db, "first", 0.5), _finished(db, "second", 0.6)
    done = seedlab_in_process("runs", "pin", str(first))
    assert done.returncode == 0 and "pinned as its project's baseline" in done.stdout
    assert _baseline(db) == first
    # Pinning another replaces it; unpinning a run that is not the baseline changes nothing.
    assert run_actions.pin_baseline(db, LOCAL_ADMIN, second) == second
    assert run_actions.pin_baseline(db, LOCAL_ADMIN, first, pinned=False) == second
    assert seedlab_in_process("runs", "pin", str(second), "--undo").returncode == 0
    assert _baseline(db) is None

    run_actions.pin_baseline(db, LOCAL_ADMIN, first)
    assert seedlab_in_process("runs", "delete", str(first), "--yes").returncode == 0
    assert _baseline(db) is None  # no pin left on a run that is gone
    missing = seedlab_in_process("runs", "pin", "999")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_the_migration_keeps_projects_and_pins_none(empty_database_url):
    from alembic import command
    from sqlalchemy import text

    from db.migrate import alembic_config, upgrade_to_head
    from db.session import make_engine
    from db.writes import projects as project_writes

    old = make_engine(empty_database_url)
    cfg = alembic_config(old)
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0017_metric_digests")
        conn.execute(
            text(
                "INSERT INTO projects (id, name, description, created_at) "
                "VALUES (7, 'Vision', 'kept', '2026-01-01')"
            )
        )
    upgrade_to_head(old)
    vision = project_store.get_project(old, 7)
    assert (vision.name, vision.description, vision.baseline_run_id) == ("Vision", "kept", None)
    project_writes.set_baseline(old, 7, 42)
    assert project_store.get_project(old, 7).baseline_run_id == 42
    old.dispose()
