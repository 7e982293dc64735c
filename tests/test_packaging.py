"""What gets installed: the server's declared dependencies and extras, the lock `make install`
installs, and the client SDK (seedlab/) as its own standard-library-only distribution."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import seedlab
from tests.support.commands import ROOT, child_env

OPTIONAL = ("ray", "export", "explain", "postgres")
# What those extras install, by import name.
OPTIONAL_MODULES = ("captum", "onnx", "onnxruntime", "onnxscript", "ray", "psycopg")


def _pyproject(path: Path = ROOT / "pyproject.toml") -> dict:
    return tomllib.loads(path.read_text())


def _pins(path: Path) -> dict[str, Requirement]:
    """A requirements file's lines, by canonical name (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    reqs = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): r for r in reqs}


def _declared() -> dict[str, tuple[str, Requirement]]:
    """Every requirement pyproject.toml declares, by name: (where: "dependencies" or the extra)."""
    project = _pyproject()["project"]
    out = {
        canonicalize_name(Requirement(r).name): ("dependencies", Requirement(r))
        for r in project["dependencies"]
    }
    for extra, reqs in project["optional-dependencies"].items():
        for r in map(Requirement, reqs):
            if canonicalize_name(r.name) != "seedlab":  # `all` names the other extras
                out.setdefault(canonicalize_name(r.name), (extra, r))
    return out


def test_pyproject_declares_every_direct_requirement_in_a_range_that_holds_its_pin():
    declared = _declared()
    for name, pin in _pins(ROOT / "requirements.txt").items():
        assert name in declared, f"{name} is in requirements.txt but not in pyproject.toml"
        where, req = declared[name]
        version = next(iter(pin.specifier)).version
        assert req.specifier.contains(version), f"{name}=={version} is outside {req} ({where})"
        assert req.extras == pin.extras, f"{name}: extras {req.extras} vs {pin.extras}"
    assert declared["ray"][0] == "ray"
    assert declared["captum"][0] == "explain"
    assert declared["psycopg"][0] == "postgres"
    assert {declared[n][0] for n in ("onnx", "onnxscript", "onnxruntime")} == {"export"}
    assert {declared[n][0] for n in ("pytest", "ruff", "import-linter")} == {"dev"}


def test_the_all_extra_is_every_optional_part():
    (everything,) = _pyproject()["project"]["optional-dependencies"]["all"]
    assert Requirement(everything).extras == set(OPTIONAL)


def test_the_lock_pins_every_requirement_as_requirements_txt_does():
    lock = _pins(ROOT / "requirements.lock")
    for req in lock.values():
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", req
    for name, pin in _pins(ROOT / "requirements.txt").items():
        assert name in lock, f"{name} is not in requirements.lock: run `make lock`"
        locked = next(iter(lock[name].specifier)).version
        assert pin.specifier.contains(locked), (
            f"requirements.txt wants {pin}, requirements.lock has {locked}: run `make lock`"
        )


def test_the_lock_has_the_cpu_torch_and_no_cuda_packages():
    lock = _pins(ROOT / "requirements.lock")
    assert str(lock["torch"].specifier).endswith("+cpu")
    # nvidia-ml-py is NVML's pure-Python binding (GPU figures, sys/… metrics), no CUDA library.
    cuda = [
        n
        for n in lock
        if (n.startswith(("nvidia-", "cuda-")) and n != "nvidia-ml-py") or n == "triton"
    ]
    assert not cuda, f"the lock pulls CUDA packages {cuda}: lock with the local CPU torch wheel"


@pytest.mark.slow  # one interpreter importing the CLI, the worker and a page: ~15 s here
def test_optional_parts_are_not_imported_until_used():
    # A plain `pip install seedlab` lacks the extras: the pages, the CLI and the worker must
    # still load, and say what to install only when an optional feature is used.
    code = (
        "import sys\n"
        "import engine.cli.main, engine.execution.worker, engine.ml.explain\n"
        "import engine.deploy.export, engine.execution.ray_cluster\n"
        "import engine.execution.executors.ray_task\n"
        "import dashboard.components.playground_output\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(OPTIONAL_MODULES)!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_sdk_imports_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"seedlab", "__future__"}
    for path in (ROOT / "seedlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            bad = [n for n in names if n.split(".")[0] not in allowed]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the SDK is stdlib only"


def test_both_distributions_read_the_one_version():
    for path in (ROOT / "pyproject.toml", ROOT / "sdk" / "pyproject.toml"):
        config = _pyproject(path)
        assert config["project"]["dynamic"] == ["version"], path
        assert config["tool"]["setuptools"]["dynamic"]["version"] == {
            "attr": "seedlab.__version__"
        }, path
    assert "seedlab*" in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", seedlab.__version__)


@pytest.mark.slow
def test_the_sdk_wheel_holds_seedlab_alone_and_installs_without_the_server(tmp_path: Path):
    # Built from a copy, so the build's own files (build/, *.egg-info) stay out of the tree.
    shutil.copytree(ROOT / "sdk", tmp_path / "sdk", symlinks=True)
    shutil.copytree(
        ROOT / "seedlab", tmp_path / "seedlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    assert (tmp_path / "sdk" / "seedlab").is_symlink()
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist)]
    subprocess.run([*build, str(tmp_path / "sdk")], check=True, capture_output=True)

    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"seedlab_sdk-{seedlab.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(f"seedlab_sdk-{seedlab.__version__}.dist-info/METADATA").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"seedlab", f"seedlab_sdk-{seedlab.__version__}.dist-info"}, tops
    assert "seedlab/__init__.py" in names
    assert "Requires-Dist" not in metadata  # no dependencies at all

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [*pip, "--python", str(python), "install", "--no-index", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)

    # Outside the repository and without its PYTHONPATH: only what the venv has.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = (
        "import importlib.util, sys\n"
        "import seedlab\n"
        "assert 'torch' not in sys.modules, 'importing the SDK imported torch'\n"
        "missing = [m for m in ('db', 'engine', 'dashboard', 'torch', 'streamlit')\n"
        "           if importlib.util.find_spec(m) is None]\n"
        "print(seedlab.__version__, seedlab.__file__, *missing)\n"
    )
    result = subprocess.run(
        [str(python), "-I", "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    version, location, *missing = result.stdout.split()
    assert version == seedlab.__version__
    assert Path(location).is_relative_to(venv)
    assert missing == ["db", "engine", "dashboard", "torch", "streamlit"]
