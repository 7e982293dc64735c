"""The import rules of DESIGN.md: db/ imports nothing of ours; training never needs the DB;
the web process never imports the trainer, runner or worker."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.commands import ROOT

OUR_PACKAGES = {"db", "engine", "dashboard"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "versions" not in p.parts]


def test_db_imports_nothing_of_ours():
    for path in _files("db"):
        ours = {n for n in _imports(path) if n.split(".")[0] in OUR_PACKAGES - {"db"}}
        assert not ours, f"{path.relative_to(ROOT)} imports {ours}"


def test_training_code_does_not_touch_the_db():
    for path in _files("engine/ml") + _files("engine/core"):
        bad = {n for n in _imports(path) if n.split(".")[0] == "db"}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_dashboard_never_imports_training_processes():
    forbidden = {
        "engine.ml.train",
        "engine.execution.runner",
        "engine.execution.worker",
        "engine.ml.pipeline",
    }
    files = _files("dashboard")
    assert files, "dashboard package missing"
    for path in files:
        bad = _imports(path) & forbidden
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
