"""Hyperparameter sweeps: a search space over RunConfig fields, explored with Optuna.

Storage design: Optuna's RDB storage on SQLite is known to fail with "database is locked" under
parallel trials, so Optuna keeps no state of its own here. A sweep is a row in `sweeps`; its
trials are ordinary runs (`runs.sweep_id`) whose metrics the engine already records. Whenever
the worker advances a sweep, it rebuilds an in-memory Optuna study from those runs (finished
trials with their values and per-epoch values, pending ones as running) and uses Optuna's
ask/tell API on it: the sampler proposes the next configs, the pruner judges running trials.
The worker is the only process that adds trials or ends a sweep, so there is one writer, and a
restarted worker simply rebuilds the study and goes on where the sweep was.
"""

from __future__ import annotations

import itertools
import logging
import math
import shutil
import time
from dataclasses import dataclass
from typing import Any, Literal, get_origin

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from db import metrics as metric_store
from db import runs as run_store
from db import sweeps as sweep_store
from db.records import RunRecord, SweepRecord
from db.session import utcnow
from db.writes import runs as run_writes
from db.writes import sweeps as sweep_writes
from engine.core.catalog import HIGHER_IS_BETTER, MONITORS, effective_task
from engine.core.config import RunConfig, validate_config
from engine.core.epochs import EPOCH_KEY, epochs_at
from engine.core.errors import ConfigError
from engine.core.metric_info import direction as metric_direction
from engine.core.settings import Settings
from engine.services.alerts import notify_run_ended, notify_sweep_ended
from engine.services.dataset_versions import resolve
from engine.services.launch import submit_run

log = logging.getLogger("seedlab.sweeps")

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "halving")
# Fields a sweep may not vary: they change what is measured, not how well a model learns.
FIXED_FIELDS = {"val_fraction", "test_fraction", "task", "monitor", "device"}
MAX_GRID = 1000


class ParamRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ParamRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("a range is either log or stepped, not both")
        return self


class ParamChoices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choices: list[Any] = Field(min_length=1)


Param = ParamRange | ParamChoices


class SweepSpec(BaseModel):
    """What a user asks for; validated before anything is stored."""

    model_config = ConfigDict(extra="forbid")

    space: dict[str, Any]  # checked field by field in parse_space, with clearer messages
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["none", "median", "halving"] = "median"
    objective: str = "val_loss"
    direction: Literal["auto", "minimize", "maximize"] = "auto"
    max_trials: int = Field(20, ge=1, le=1000)
    time_limit_s: float | None = Field(None, gt=0)
    parallelism: int = Field(1, ge=1, le=64)
    seed: int = Field(0, ge=0)


def _field_kind(name: str, kinds: dict[str, str] | None = None) -> str:
    """int | float | choice: how a RunConfig field (or, with `kinds`, a recipe parameter)
    can be searched."""
    if kinds is not None:
        return kinds.get(name, "choice")
    annotation = RunConfig.model_fields[name].annotation
    if annotation is bool or get_origin(annotation) in (Literal, list) or annotation is str:
        return "choice"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    return "choice"


def _choice_value(name: str, value: Any) -> Any:  # noqa: ANN401
    """A choice as Optuna stores it: scalars as they are; list fields (hidden sizes) as their
    canonical "128,64" text, so 64, [64] and "64" are one choice, and a run's config maps back."""
    if name not in RunConfig.model_fields:  # a recipe parameter: always a scalar
        return value
    if get_origin(RunConfig.model_fields[name].annotation) is not list or value is None:
        return value
    try:
        parsed = getattr(RunConfig.model_validate({name: value}), name)
    except ValidationError:
        return value
    return ",".join(str(v) for v in parsed)


def _parse_param(name: str, spec: Any) -> Param:  # noqa: ANN401 - YAML/JSON as given
    """One entry of a search space: a list or {choices: [...]} of choices, else {low, high}."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    try:
        if isinstance(spec, dict) and "choices" in spec:
            return ParamChoices.model_validate(spec)
        return ParamRange.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"space: {name}: {problems}") from None


def parse_space(raw: dict[str, Any], base: dict[str, Any]) -> dict[str, Param]:
    """Validate a search space against RunConfig: every field known and searchable, and every
    bound or choice a valid value of its field (ConfigError names the field otherwise)."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("space: give at least one field, e.g. learning_rate: {low: 1e-4, ...}")
    space: dict[str, Param] = {}
    for name, spec in raw.items():
        if name not in RunConfig.model_fields:
            raise ConfigError(f"space: {name!r} is not a RunConfig field")
        if name in FIXED_FIELDS:
            raise ConfigError(f"space: {name} cannot be searched (it changes what is measured)")
        param = _parse_param(name, spec)
        kind = _field_kind(name)
        if isinstance(param, ParamRange) and kind == "choice":
            raise ConfigError(f"space: {name} takes a list of choices, not a range")
        samples = [param.low, param.high] if isinstance(param, ParamRange) else list(param.choices)
        for value in samples:
            if isinstance(param, ParamRange) and kind == "int":
                value = int(value)
            try:
                validate_config({**base, name: value})
            except ConfigError as exc:
                raise ConfigError(f"space: {name} = {value!r} is not valid: {exc}") from None
        if isinstance(param, ParamChoices):
            param = ParamChoices(choices=[_choice_value(name, c) for c in param.choices])
        space[name] = param
    return space


def distributions(space: dict[str, Param], kinds: dict[str, str] | None = None) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, ParamChoices):
            out[name] = CategoricalDistribution(param.choices)
        elif _field_kind(name, kinds) == "int":
            step = max(1, int(param.step or 1))
            out[name] = IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
        else:
            out[name] = FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    return out


def grid_points(
    space: dict[str, Param], kinds: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every combination, in a fixed order: choices as given, stepped ranges low → high."""
    axes: list[list[Any]] = []
    for name, param in space.items():
        if isinstance(param, ParamChoices):
            axes.append(list(param.choices))
            continue
        if param.step is None:
            raise ConfigError(
                f"space: {name}: a grid needs choices or a range with a step, e.g. "
                f"{{low: {param.low:g}, high: {param.high:g}, step: ...}}"
            )
        count = int(math.floor((param.high - param.low) / param.step + 1e-9)) + 1
        values = [param.low + i * param.step for i in range(count)]
        axes.append([int(round(v)) if _field_kind(name, kinds) == "int" else v for v in values])
    total = math.prod(len(a) for a in axes)
    if total > MAX_GRID:
        raise ConfigError(f"space: the grid has {total:,} points (limit {MAX_GRID:,}); shrink it")
    return [dict(zip(space, combo, strict=True)) for combo in itertools.product(*axes)]


def _direction(objective: str, direction: str) -> str:
    if direction != "auto":
        return direction
    if objective in HIGHER_IS_BETTER:
        return "maximize" if HIGHER_IS_BETTER[objective] else "minimize"
    # A metric a script logs: read from its name (accuracy, f1… higher; loss, error… lower).
    return "maximize" if metric_direction(objective) == "higher" else "minimize"


def submit_sweep(
    db: Engine,
    dataset_ref: str | int,
    spec: dict[str, Any] | SweepSpec,
    *,
    name: str = "",
    base: dict[str, Any] | None = None,
    owner: str | None = None,
) -> int:
    """Validate and store a sweep; the worker launches its trials (owned by `owner` too).

    `dataset_ref` "NAME" is its latest version now, "NAME@N" version N: every trial trains on
    that one version, whatever versions are added while the sweep runs."""
    dataset, version = resolve(db, dataset_ref)
    try:
        sweep = spec if isinstance(spec, SweepSpec) else SweepSpec.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"Invalid sweep — {problems}") from None
    base = dict(base or {})
    base_config = validate_config(base)
    task = effective_task(base_config.task, dataset.task)
    if sweep.objective not in MONITORS[task]:
        raise ConfigError(
            f"objective: {sweep.objective} is not measured for {task}; use one of "
            f"{', '.join(MONITORS[task])}"
        )
    space = parse_space(sweep.space, base)
    max_trials = sweep.max_trials
    if sweep.sampler == "grid":
        max_trials = min(max_trials, len(grid_points(space)))
    return sweep_writes.create_sweep(
        db,
        name=name.strip() or f"{dataset.name}-sweep",
        dataset_id=dataset.id,
        dataset_version=version.number,
        base_config=base,
        space={k: v.model_dump() for k, v in space.items()},
        sampler=sweep.sampler,
        pruner=sweep.pruner,
        objective=sweep.objective,
        direction=_direction(sweep.objective, sweep.direction),
        max_trials=max_trials,
        time_limit_s=sweep.time_limit_s,
        parallelism=sweep.parallelism,
        seed=sweep.seed,
        owner=owner,
    )


# ---------------------------------------------------------------- sweeps over a recipe

# A recipe parameter's type → how it is searched (strings and bools: among choices).
_RECIPE_KINDS = {"int": "int", "float": "float", "str": "choice", "bool": "choice"}


def _recipe_of(sweep: SweepRecord) -> dict[str, Any] | None:
    """A recipe sweep's base_config: {"recipe", "params", "kinds", "device", "dataset"}."""
    base = sweep.base_config
    return base if isinstance(base, dict) and "recipe" in base else None


def _kinds_of(sweep: SweepRecord) -> dict[str, str] | None:
    recipe = _recipe_of(sweep)
    return recipe["kinds"] if recipe else None


def parse_recipe_space(raw: dict[str, Any], params: list[Any]) -> dict[str, Param]:
    """A search space over a recipe's parameters: every name one of them, every bound or
    choice a valid value of it (its range, its choices)."""
    from engine.core.recipe_params import coerce

    if not isinstance(raw, dict) or not raw:
        raise ConfigError("space: give at least one parameter, e.g. lr: {low: 1e-4, high: 0.1}")
    known = {p.name: p for p in params}
    space: dict[str, Param] = {}
    for name, spec in raw.items():
        if name not in known:
            raise ConfigError(
                f"space: {name!r} is not a parameter of the recipe; its parameters are: "
                + (", ".join(known) or "none")
            )
        param = _parse_param(name, spec)
        kind = _RECIPE_KINDS[known[name].type]
        if isinstance(param, ParamRange) and kind == "choice":
            raise ConfigError(f"space: {name} ({known[name].type}) takes a list of choices")
        samples = [param.low, param.high] if isinstance(param, ParamRange) else param.choices
        try:
            checked = [coerce(known[name], v) for v in samples]
        except ConfigError as exc:
            raise ConfigError(f"space: {exc}") from None
        if isinstance(param, ParamChoices):
            param = ParamChoices(choices=checked)
        space[name] = param
    return space


def submit_recipe_sweep(
    settings: Settings,
    db: Engine,
    recipe: str,
    spec: dict[str, Any] | SweepSpec,
    *,
    name: str = "",
    base: dict[str, Any] | None = None,
    dataset: str | int | None = None,
    device: str = "auto",
    owner: str | None = None,
) -> int:
    """A sweep over a recipe's parameters; `objective` is any metric its script logs (pruning
    reads that metric's values per step, as the script logs them)."""
    from engine.core.recipe_params import resolve_values
    from engine.services.recipes import recipe_info, snapshot_for_sweep, sweep_code_dir

    info = recipe_info(db, recipe)
    try:
        sweep = spec if isinstance(spec, SweepSpec) else SweepSpec.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"Invalid sweep — {problems}") from None
    fixed = resolve_values(info.params, dict(base or {}))
    space = parse_recipe_space(sweep.space, info.params)
    kinds = {p.name: _RECIPE_KINDS[p.type] for p in info.params if p.name in space}
    dataset_record, version = (None, None)
    if dataset not in (None, ""):
        dataset_record, version = resolve(db, dataset)
    max_trials = sweep.max_trials
    if sweep.sampler == "grid":
        max_trials = min(max_trials, len(grid_points(space, kinds)))
    # Every trial runs the code as it is now, however the recipe is edited meanwhile.
    staging, code = snapshot_for_sweep(settings, db, recipe)
    try:
        sweep_id = sweep_writes.create_sweep(
            db,
            name=name.strip() or f"{recipe}-sweep",
            dataset_id=dataset_record.id if dataset_record else None,
            dataset_version=version.number if version else None,
            base_config={
                "recipe": recipe,
                "params": fixed,
                "kinds": kinds,
                "device": device,
                "dataset": dataset_record.name if dataset_record else None,
                "code": code,  # what the sweep's copy (sweep_code_dir) was taken from
            },
            space={k: v.model_dump() for k, v in space.items()},
            sampler=sweep.sampler,
            pruner=sweep.pruner,
            objective=sweep.objective,
            direction=_direction(sweep.objective, sweep.direction),
            max_trials=max_trials,
            time_limit_s=sweep.time_limit_s,
            parallelism=sweep.parallelism,
            seed=sweep.seed,
            owner=owner,
        )
        code_dir = sweep_code_dir(settings, sweep_id)
        code_dir.parent.mkdir(parents=True, exist_ok=True)
        (staging / "code").rename(code_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sweep_id


def _pinned(sweep: SweepRecord) -> str | int | None:
    """The sweep's dataset as a reference to its one version ("NAME@N"), for recipe runs."""
    if sweep.dataset_id is None or sweep.dataset_version is None or not sweep.dataset_name:
        return sweep.dataset_id
    return f"{sweep.dataset_name}@{sweep.dataset_version}"


def _submit_trial(
    db: Engine, sweep: SweepRecord, params: dict[str, Any], *, name: str, **extra: Any
) -> int:
    """Queue one run of the sweep's search: the built-in pipeline, or the sweep's recipe."""
    recipe = _recipe_of(sweep)
    if recipe is None:
        values = {**sweep.base_config, **params, "monitor": sweep.objective}
        return submit_run(
            db,
            sweep.dataset_id,
            values,
            name=name,
            owner=sweep.owner,
            dataset_version=sweep.dataset_version,
            **extra,
        )
    from engine.services.recipes import submit_recipe_run, sweep_code_dir

    settings = Settings.from_env()
    code_dir = sweep_code_dir(settings, sweep.id)
    return submit_recipe_run(
        settings,
        db,
        None,
        recipe["recipe"],
        {**recipe["params"], **params},
        # The sweep's copy of the code; a sweep from before copies existed: the recipe's folder.
        code_from=(str(code_dir), recipe.get("code") or {}) if code_dir.is_dir() else None,
        dataset=_pinned(sweep),
        device=recipe.get("device", "auto"),
        name=name,
        owner=sweep.owner,
        **extra,
    )


# ---------------------------------------------------------------- the study, rebuilt


@dataclass
class Trial:
    number: int
    run: RunRecord
    params: dict[str, Any]
    value: float | None  # the best objective value over its epochs, when completed
    state: str  # complete | pruned | fail | running (as Optuna sees it)
    intermediate: dict[int, float]

    @property
    def shown_state(self) -> str:
        """The state for people: Optuna counts a queued trial as running; it is not yet."""
        return "queued" if self.state == "running" and self.run.status == "queued" else self.state


# The order, and the words, the Sweeps page counts trials in.
SHOWN_STATES = {
    "running": "running",
    "queued": "queued",
    "complete": "completed",
    "pruned": "pruned",
    "fail": "failed",
}


def state_counts(trials: list[Trial]) -> str:
    """ "1 running, 1 queued, 3 completed": each trial counted in its true state."""
    counts = {s: 0 for s in SHOWN_STATES}
    for t in trials:
        counts[t.shown_state] += 1
    return ", ".join(f"{n} {SHOWN_STATES[s]}" for s, n in counts.items() if n)


def stored_space(sweep: SweepRecord) -> dict[str, Param]:
    return {
        k: ParamChoices.model_validate(v) if "choices" in v else ParamRange.model_validate(v)
        for k, v in sweep.space.items()
    }


def _per_epoch(history: pd.DataFrame, run_id: int, key: str) -> dict[int, float]:
    """A trial's values of `key` by epoch: its points sit at optimizer steps, which differ
    between trials of different batch sizes; the pruner compares trials epoch by epoch."""
    rows = history[history["run_id"] == run_id]
    points = rows[rows["key"] == key]
    marks = rows[rows["key"] == EPOCH_KEY]
    epochs = epochs_at(
        points["step"].to_numpy(dtype=float),
        marks["step"].to_numpy(dtype=float),
        marks["value"].to_numpy(dtype=float),
    )
    return {
        int(round(e)): float(v)
        for e, v in zip(epochs, points["value"], strict=True)
        # Only epoch ends: a training-loss objective also has points within an epoch.
        if v is not None and math.isfinite(v) and abs(e - round(e)) < 1e-9
    }


def load_trials(db: Engine, sweep: SweepRecord) -> list[Trial]:
    space = stored_space(sweep)
    ids = sweep_store.trial_run_ids(db, sweep.id)
    keys = [sweep.objective, EPOCH_KEY]
    history = metric_store.metric_history(db, ids, keys) if ids else None
    trials = []
    for number, run_id in enumerate(ids):
        run = run_store.get_run(db, run_id)
        if run is None:
            continue
        intermediate = _per_epoch(history, run_id, sweep.objective) if history is not None else {}
        given = run.config.get("params", {}) if _recipe_of(sweep) else run.config
        params = {k: _choice_value(k, given.get(k)) for k in space}
        entry = run.summary.get(sweep.objective)
        best = None
        if entry is not None:
            best = entry["max"] if sweep.direction == "maximize" else entry["min"]
        if sweep_store.PRUNED_TAG in run.tags:
            state = "pruned"
        elif run.status == "completed" and best is not None and math.isfinite(best):
            state = "complete"
        elif run.status in ("queued", "running"):
            state = "running"
        else:
            state = "fail"
        trials.append(Trial(number, run, params, best, state, intermediate))
    return trials


def build_study(sweep: SweepRecord, trials: list[Trial]) -> Any:  # noqa: ANN401
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = sweep.seed * 10_007 + len(trials)  # new proposals even when nothing else changed
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if sweep.sampler == "random"
        else optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constant_liar=True)
    )
    pruner = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2),
        "halving": optuna.pruners.SuccessiveHalvingPruner(),
        "none": optuna.pruners.NopPruner(),
    }[sweep.pruner]
    study = optuna.create_study(direction=sweep.direction, sampler=sampler, pruner=pruner)
    dists = distributions(stored_space(sweep), _kinds_of(sweep))
    states = {
        "complete": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "fail": TrialState.FAIL,
        "running": TrialState.RUNNING,
    }
    for t in trials:
        params = {k: v for k, v in t.params.items() if k in dists}
        try:
            frozen = create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                value=t.value if t.state == "complete" else None,
                state=states[t.state],
                intermediate_values=t.intermediate,
                user_attrs={"run_id": t.run.id},
            )
        except ValueError:
            continue  # a trial edited outside its space (e.g. by hand) teaches the sampler nothing
        study.add_trial(frozen)
    return study


def best_trial(sweep: SweepRecord, trials: list[Trial]) -> Trial | None:
    done = [t for t in trials if t.state == "complete"]
    if not done:
        return None
    pick = max if sweep.direction == "maximize" else min
    return pick(done, key=lambda t: t.value)


# ---------------------------------------------------------------- the worker's step


def advance(db: Engine, sweep: SweepRecord) -> None:
    """One step of a running sweep: prune, launch trials into free slots, or finish it."""
    from optuna.trial import TrialState, create_trial

    trials = load_trials(db, sweep)
    study = build_study(sweep, trials)
    dists = distributions(stored_space(sweep), _kinds_of(sweep))

    if sweep.pruner != "none":
        for t in trials:
            if t.run.status != "running" or not t.intermediate:
                continue
            if sweep_store.PRUNED_TAG in t.run.tags:
                continue
            frozen = create_trial(
                params={k: v for k, v in t.params.items() if k in dists},
                distributions=dists,
                state=TrialState.RUNNING,
                intermediate_values=t.intermediate,
            )
            if study.pruner.prune(study, frozen):
                log.info("sweep %s: pruning trial run %s", sweep.id, t.run.id)
                sweep_writes.mark_pruned(db, t.run.id)

    best = best_trial(sweep, trials)
    best_id = best.run.id if best else None
    if best_id != sweep.best_run_id:
        sweep_writes.set_best_run(db, sweep.id, best_id)

    active = sum(1 for t in trials if t.state == "running")
    elapsed = (utcnow() - sweep.created_at).total_seconds()
    out_of_time = sweep.time_limit_s is not None and elapsed >= sweep.time_limit_s
    launched = len(trials)
    if launched >= sweep.max_trials or out_of_time:
        if active == 0:
            if sweep_writes.finish_sweep(db, sweep.id, "completed", best_run_id=best_id):
                notify_sweep_ended(db, None, sweep.id)
        return
    grid = grid_points(stored_space(sweep), _kinds_of(sweep)) if sweep.sampler == "grid" else None
    for _ in range(min(sweep.parallelism - active, sweep.max_trials - launched)):
        if grid is not None:
            params = grid[launched]
        else:
            params = study.ask(dists).params
        _submit_trial(
            db,
            sweep,
            params,
            name=f"{sweep.name} #{launched}",
            sweep_id=sweep.id,
            tags=(f"sweep-{sweep.id}",),
        )
        launched += 1


def advance_all(db: Engine, *, min_interval_s: float = 1.0) -> None:
    """Advance every running sweep; a sweep that cannot go on is failed with the reason (a busy
    or unreachable database fails none: the sweep is advanced on a later pass)."""
    now = time.monotonic()
    if now - _last_step.get("t", -math.inf) < min_interval_s:
        return
    _last_step["t"] = now
    for sweep in sweep_store.list_sweeps(db, statuses=("running",)):
        try:
            advance(db, sweep)
        except OperationalError as exc:
            # The database, not the sweep: "database is locked" past SQLite's busy timeout, a
            # PostgreSQL serialization failure or dropped connection. The next pass rebuilds
            # the study from the stored trials and goes on; failing the sweep would be for good.
            log.warning(
                "sweep %s not advanced this pass (the database is busy or unreachable; "
                "retried on the next pass): %s",
                sweep.id,
                str(exc).splitlines()[0],
            )
        except Exception as exc:  # one broken sweep must not stop the engine or other sweeps
            log.exception("sweep %s failed", sweep.id)
            if sweep_writes.finish_sweep(
                db,
                sweep.id,
                "failed",
                best_run_id=sweep.best_run_id,
                error=f"{type(exc).__name__}: {exc}",
            ):
                notify_sweep_ended(db, None, sweep.id)


_last_step: dict[str, float] = {}


def cancel_sweep(db: Engine, sweep_id: int) -> str | None:
    """Stop a sweep and cancel its queued and running trials; returns the sweep's status."""
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        return None
    ended = sweep_writes.finish_sweep(db, sweep_id, "cancelled", best_run_id=sweep.best_run_id)
    for run_id in sweep_store.trial_run_ids(db, sweep_id):
        if run_writes.request_cancel(db, run_id) == "cancelled":
            notify_run_ended(db, None, run_id)
    if ended:
        notify_sweep_ended(db, None, sweep_id)
    return sweep_store.get_sweep(db, sweep_id).status


def launch_best(
    db: Engine,
    sweep_id: int,
    overrides: dict[str, Any] | None = None,
    *,
    owner: str | None = None,
) -> int:
    """Queue the best trial's config as an ordinary run (not part of the sweep)."""
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        raise ConfigError(f"No sweep #{sweep_id}.")
    best = best_trial(sweep, load_trials(db, sweep))
    if best is None:
        raise ConfigError(f"Sweep #{sweep_id} has no completed trial yet.")
    if _recipe_of(sweep):  # the best trial's parameters and its very code
        from engine.services.recipes import submit_recipe_run

        return submit_recipe_run(
            Settings.from_env(),
            db,
            None,
            best.run.config["recipe"],
            overrides,
            dataset=_pinned(sweep),
            device=str(best.run.config.get("device", "auto")),
            name=f"{sweep.name} best (from run #{best.run.id})",
            parent_run_id=best.run.id,
            owner=owner,
        )
    values = {**best.run.config, **(overrides or {})}
    return submit_run(
        db,
        sweep.dataset_id,
        values,
        dataset_version=best.run.dataset_version,
        name=f"{sweep.name} best (from run #{best.run.id})",
        parent_run_id=best.run.id,
        owner=owner,
    )


def searchable_fields() -> list[str]:
    return [n for n in RunConfig.model_fields if n not in FIXED_FIELDS]
