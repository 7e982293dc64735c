"""Recipes: a team's own training scripts, registered by an admin, launched by members.

A recipe is a folder on the server (or a git checkout) with an entry script. Registering it
stores where it is; its parameters are read from the folder whenever they are needed
(engine/core/recipe_params.py), so an edited seedlab.yaml shows on the next launch. Code never
comes through the browser: only `seedlab recipes add` (an admin on the server) registers it.

Every run keeps the code it ran: at submit the recipe folder is copied into the run's folder
(`runs/<id>/code`), and the engine runs that copy, never the live folder. A clone copies its
source run's snapshot, so `runs clone 1` runs run 1's code even after the recipe was edited.
For a git checkout the commit and whether the tree was dirty are recorded beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db import recipes as recipe_store
from db import runs as run_store
from db.records import RecipeRecord
from db.writes import recipes as recipe_writes
from db.writes import runs as run_writes
from engine.core.errors import ConfigError, SeedlabError
from engine.core.recipe_params import SPEC_FILE, RecipeParam, params_from_yaml, read_params
from engine.core.recipe_params import resolve_values as resolve_param_values
from engine.core.settings import Settings
from engine.services import audit
from engine.services.launch import find_dataset
from engine.services.permissions import Actor, Permission, check

# Left out of a snapshot: version-control data, caches and environments are not the code.
SNAPSHOT_IGNORE = (".git", "__pycache__", "*.pyc", ".venv", "venv", ".ipynb_checkpoints")
# A recipe folder is code; data belongs in a Seedlab dataset (handed to the script by path).
MAX_SNAPSHOT_BYTES = 200 * 2**20
CODE_DIR = "code"
DEVICES = ("auto", "cpu", "cuda")


class RecipeError(SeedlabError):
    """A recipe that cannot be registered, found or launched; the message says what to do."""


@dataclass(frozen=True)
class RecipeInfo:
    record: RecipeRecord
    params: list[RecipeParam]
    params_from: str  # "seedlab.yaml" | "argparse"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "params": [p.to_dict() for p in self.params],
            "params_from": self.params_from,
        }


def _ignored(name: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(name, pattern) for pattern in SNAPSHOT_IGNORE)


def _code_size(folder: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _ignored(d)]
        for f in files:
            if not _ignored(f):
                try:
                    total += (Path(root) / f).stat().st_size
                except OSError:
                    pass
    return total


def _choose_entry(folder: Path, entry: str | None) -> str:
    if entry:
        return entry
    spec = folder / SPEC_FILE
    if spec.is_file():
        _, named = params_from_yaml(spec)
        if named:
            return named
    if (folder / "train.py").is_file():
        return "train.py"
    scripts = sorted(p.name for p in folder.glob("*.py"))
    if len(scripts) == 1:
        return scripts[0]
    raise RecipeError(
        f"Which script is the entry point in {folder}? Give it with --entry "
        f"(Python files there: {', '.join(scripts) or 'none'})."
    )


def add_recipe(
    db: Engine,
    actor: Actor,
    path: str | Path,
    name: str,
    *,
    entry: str | None = None,
    python: str | None = None,
) -> RecipeInfo:
    """Register the code at `path` (a folder, or the entry script itself) as recipe `name`.
    Admins only: a recipe is code the engine runs on the server."""
    check(actor, Permission.MANAGE_RECIPES)
    name = name.strip()
    if not name or len(name) > 200:
        raise RecipeError("Give the recipe a name (at most 200 characters) with --name.")
    target = Path(path).expanduser().resolve()
    if target.is_file():
        target, entry = target.parent, entry or target.name
    if not target.is_dir():
        raise RecipeError(f"No folder {target}; give the folder that holds the training script.")
    home = Settings.from_env().home
    if home.resolve().is_relative_to(target):
        # Every run copies the recipe folder into the home: it would copy itself forever.
        raise RecipeError(
            f"{target} holds Seedlab's home ({home}); register the folder of the code only."
        )
    entry = _choose_entry(target, entry)
    script = (target / entry).resolve()
    if not script.is_file() or not script.is_relative_to(target):
        raise RecipeError(f"No entry script {entry!r} inside {target}; check --entry.")
    if python is not None:
        interpreter = Path(python).expanduser()
        if not (interpreter.is_file() and os.access(interpreter, os.X_OK)):
            raise RecipeError(
                f"{python} is not an executable Python; give the venv's bin/python with --python."
            )
        python = str(interpreter.absolute())
    size = _code_size(target)
    if size > MAX_SNAPSHOT_BYTES:
        raise RecipeError(
            f"{target} holds {size / 2**20:.0f} MB besides .git and environments; every run "
            f"copies its code, so keep it under {MAX_SNAPSHOT_BYTES // 2**20} MB: move data into "
            "a Seedlab dataset (`seedlab datasets add`), which the run gets by path."
        )
    params, params_from = read_params(target, entry)  # refuses a broken seedlab.yaml now
    try:
        recipe_writes.add_recipe(
            db, name=name, path=str(target), entry=entry, python=python, owner=actor.name
        )
    except recipe_writes.DuplicateRecipeName:
        raise RecipeError(
            f"A recipe named {name!r} exists; remove it first (seedlab recipes remove {name}) "
            "or pick another name."
        ) from None
    audit.record(db, actor, "add recipe", f"recipe {name}", f"{target}/{entry}")
    return RecipeInfo(find_recipe(db, name), params, params_from)


def find_recipe(db: Engine, name: str) -> RecipeRecord:
    record = recipe_store.get_recipe(db, name)
    if record is None:
        known = ", ".join(r.name for r in recipe_store.list_recipes(db))
        raise RecipeError(
            f"No recipe {name!r}. Recipes: "
            + (known or "none yet — an admin adds one with `seedlab recipes add PATH --name N`")
            + "."
        )
    return record


def recipe_info(db: Engine, name: str) -> RecipeInfo:
    """The recipe and its parameters as its folder declares them now."""
    record = find_recipe(db, name)
    folder = Path(record.path)
    if not (folder / record.entry).is_file():
        raise RecipeError(
            f"Recipe {name!r}: {folder / record.entry} is gone. Restore it, or register the "
            "recipe again where the code now is."
        )
    params, params_from = read_params(folder, record.entry)
    return RecipeInfo(record, params, params_from)


def list_recipes(db: Engine) -> list[RecipeRecord]:
    return recipe_store.list_recipes(db)


def remove_recipe(db: Engine, actor: Actor, name: str) -> None:
    """Forget a recipe; runs made from it keep their code snapshots (and can be cloned)."""
    check(actor, Permission.MANAGE_RECIPES)
    if not recipe_writes.remove_recipe(db, name):
        find_recipe(db, name)  # raises, listing the recipes there are
    audit.record(db, actor, "remove recipe", f"recipe {name}")


# ---------------------------------------------------------------- launching


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit of a git checkout and whether its tree is dirty; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _stage_snapshot(settings: Settings, source: Path) -> Path:
    """Copy `source` into a staging folder under runs/ (same file system as the run folder, so
    moving it into place is a rename)."""
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".code-", dir=settings.runs_dir))
    shutil.copytree(
        source, staging / CODE_DIR, ignore=shutil.ignore_patterns(*SNAPSHOT_IGNORE), symlinks=True
    )
    return staging


def snapshot_for_sweep(settings: Settings, db: Engine, recipe: str) -> tuple[Path, dict[str, Any]]:
    """Copy a recipe's folder for a sweep (staged; the caller moves it into place), so every
    trial runs the same code however the recipe is edited meanwhile. Returns the staging folder
    and what it was copied from."""
    record = find_recipe(db, recipe)
    source = Path(record.path)
    return _stage_snapshot(settings, source), {"from": str(source), **(git_state(source) or {})}


def sweep_code_dir(settings: Settings, sweep_id: int) -> Path:
    return settings.home / "sweeps" / str(sweep_id) / CODE_DIR


def snapshot_dir(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / CODE_DIR


def submit_recipe_run(
    settings: Settings,
    db: Engine,
    actor: Actor | None,
    recipe: str,
    values: dict[str, Any] | None = None,
    *,
    dataset: str | int | None = None,
    device: str = "auto",
    name: str | None = None,
    project_id: int | None = None,
    tags: tuple[str, ...] | list[str] = (),
    sweep_id: int | None = None,
    owner: str | None = None,
    parent_run_id: int | None = None,
    code_from: tuple[str, dict[str, Any]] | None = None,
) -> int:
    """Queue a run of `recipe` with parameter `values` (text or typed) as `actor` (None: the
    engine itself, for a sweep's trials, owned by `owner`). With `parent_run_id` whose run is a
    recipe run, that run's code snapshot is run instead of the recipe's folder (a clone); with
    `code_from` (a folder and what it was copied from), that folder's code (a sweep's)."""
    if actor is not None:
        check(actor, Permission.LAUNCH)
        owner = actor.name
    if device not in DEVICES:
        raise ConfigError(f"device: {device!r}; use one of {', '.join(DEVICES)}")
    parent = run_store.get_run(db, parent_run_id) if parent_run_id is not None else None
    if parent is not None and parent.source == "recipe":
        source_dir = snapshot_dir(settings, parent.id)
        if not source_dir.is_dir():
            raise RecipeError(
                f"Run {parent.id} has no code snapshot left ({source_dir}); it cannot be cloned."
            )
        base = dict(parent.config)
        entry, python, recipe = base["entry"], base.get("python"), base["recipe"]
        code = {**(base.get("code") or {}), "from": f"run {parent.id}"}
        params, _ = read_params(source_dir, entry)
        given = {**base.get("params", {}), **(values or {})}
    elif code_from is not None:  # a sweep's trial: the code the sweep copied when it began
        record = find_recipe(db, recipe)
        source_dir, code = Path(code_from[0]), dict(code_from[1])
        entry, python = record.entry, record.python
        params, _ = read_params(source_dir, entry)
        given = dict(values or {})
    else:
        info = recipe_info(db, recipe)
        source_dir = Path(info.record.path)
        entry, python, params = info.record.entry, info.record.python, info.params
        code = {"from": str(source_dir), **(git_state(source_dir) or {})}
        given = dict(values or {})
    resolved = resolve_param_values(params, given)
    dataset_record = find_dataset(db, dataset) if dataset not in (None, "") else None
    config = {
        "recipe": recipe,
        "entry": entry,
        "python": python,
        "params": resolved,
        "device": device,
        "dataset": dataset_record.name if dataset_record else None,
        "code": code,
    }
    run_name = (name or "").strip() or f"{recipe}-" + "-".join(
        f"{k}{v}" for k, v in list(given.items())[:3]
    ).rstrip("-")
    staging = _stage_snapshot(settings, source_dir)
    try:
        run_id = run_writes.create_run(
            db,
            name=run_name[:200],
            dataset_id=dataset_record.id if dataset_record else None,
            config=config,
            parent_run_id=parent.id if parent else None,
            sweep_id=sweep_id,
            tags=tags,
            owner=owner,
            source="recipe",
            **({"project_id": project_id} if project_id is not None else {}),
        )
        # Within milliseconds of the insert; the runner waits for it should it start sooner.
        run_dir = settings.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        (staging / CODE_DIR).rename(run_dir / CODE_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if actor is not None:
        detail = f"recipe {recipe}" + (f", from run {parent.id}" if parent else "")
        audit.record(db, actor, "launch", f"run {run_id}", detail)
    return run_id


def clone_recipe_run(
    settings: Settings,
    db: Engine,
    actor: Actor,
    run_id: int,
    overrides: dict[str, Any] | None = None,
    *,
    name: str | None = None,
) -> int:
    """Queue run `run_id` again with its own code snapshot and parameters (plus overrides)."""
    run = run_store.get_run(db, run_id)
    if run is None or run.source != "recipe":
        raise RecipeError(f"Run {run_id} is not a recipe run.")
    return submit_recipe_run(
        settings,
        db,
        actor,
        run.config["recipe"],
        overrides,
        dataset=run.dataset_id,
        device=str(run.config.get("device", "auto")),
        name=name or f"{run.name} (clone)",
        project_id=run.project_id,
        parent_run_id=run.id,
    )


def python_for(config: dict[str, Any]) -> str:
    """The interpreter a recipe run uses: its recipe's venv, else the server's own Python."""
    return str(config.get("python") or sys.executable)
