"""The architecture's rules (README "Architecture", .importlinter) hold, transitively.

import-linter builds the whole import graph (imports inside functions count), so a rule broken
three modules away is still caught. The second test plants violations in a copy of the real tree
to prove the check sees them; the last one keeps the migrations on one Alembic head.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from db.migrate import MIGRATIONS_DIR
from tests.support.commands import ROOT

PACKAGES = ("db", "engine", "dashboard", "seedlab")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def _copy_tree(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / ".importlinter", target / ".importlinter")
    return target


def _plant(path: Path, source: str) -> None:
    path.write_text(path.read_text() + "\n\n" + source)


def test_the_contracts_hold_on_the_real_tree():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_a_planted_violation_is_caught(tmp_path):
    tree = _copy_tree(tmp_path / "tree")
    assert _lint_imports(tree).returncode == 0, "the copy must pass before anything is planted"

    # Hidden the way real ones were: inside functions, and reaching the database transitively.
    _plant(
        tree / "engine" / "ml" / "inputs.py",
        "def _late():\n    from engine.data.datasets import ingest_bytes\n\n"
        "    return ingest_bytes\n",
    )
    _plant(
        tree / "engine" / "core" / "errors.py",
        "def _gpu():\n    import torch\n\n    return torch\n",
    )
    _plant(
        tree / "dashboard" / "auth.py",
        "def _train():\n    from engine.ml import train\n\n    return train\n",
    )
    _plant(
        tree / "db" / "records.py",
        "def _up():\n    from engine.core import catalog\n\n    return catalog\n",
    )
    result = _lint_imports(tree)
    assert result.returncode != 0
    out = result.stdout
    assert "engine.ml is not allowed to import db" in out
    assert "engine.ml.inputs -> engine.data.datasets" in out
    assert "engine.core is not allowed to import torch" in out
    assert "dashboard is not allowed to import engine.ml.train" in out
    assert "db is not allowed to import engine" in out


def test_a_planted_cycle_and_cli_import_are_caught(tmp_path):
    tree = _copy_tree(tmp_path / "tree")
    _plant(
        tree / "engine" / "ml" / "models" / "mlp.py",
        "def _back():\n    from engine.ml.models import build\n\n    return build\n",
    )
    _plant(
        tree / "engine" / "services" / "launch.py",
        "def _cli():\n    from engine.cli import main\n\n    return main\n",
    )
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "No cycles are allowed in engine.ml.models" in result.stdout
    assert "engine.services is not allowed to import engine.cli" in result.stdout


def test_migrations_have_one_head():
    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert len(heads) == 1, (
        f"several Alembic heads {heads}: rebase the newest migration on the other"
    )


def test_no_test_module_imports_another():
    """Shared helpers live in tests/support; a test module imported by another runs its tests'
    module-level set-up twice and hides what is shared."""
    import ast

    offenders = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)} imports {n}"
                for n in names
                if n.startswith("tests.test_") or n.startswith("tests.e2e.test_")
            ]
    assert offenders == []
