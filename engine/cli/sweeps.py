"""`seedlab sweeps …`: submit, watch, cancel hyperparameter sweeps and launch their best run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from db import sweeps as sweep_store
from engine.cli.common import actor, fail, print_json, ready
from engine.core.config import load_config_file, parse_overrides
from engine.core.errors import ConfigError
from engine.core.formatting import format_setting

app = typer.Typer(
    help="Hyperparameter sweeps: search spaces over run settings, explored with Optuna.",
    no_args_is_help=True,
)


def parse_param(text: str) -> tuple[str, dict[str, Any]]:
    """`learning_rate=1e-4..1e-1:log`, `batch_size=16..128:step=16`, `activation=relu,gelu`."""
    if "=" not in text:
        raise ConfigError(
            f"--param expects name=spec, e.g. learning_rate=1e-4..1e-1:log; got {text!r}"
        )
    name, spec = (part.strip() for part in text.split("=", 1))
    if ".." in spec:
        bounds, *options = spec.split(":")
        low, high = bounds.split("..", 1)
        out: dict[str, Any] = {"low": float(low), "high": float(high)}
        for option in options:
            if option == "log":
                out["log"] = True
            elif option.startswith("step="):
                out["step"] = float(option.removeprefix("step="))
            else:
                raise ConfigError(f"--param {name}: unknown option {option!r} (log or step=N)")
        return name, out
    # Choices: "|" separates them when a choice holds commas (hidden sizes: 64|128,64).
    parts = spec.split("|") if "|" in spec else spec.split(",")
    return name, {"choices": [yaml.safe_load(p) if p.strip() else p for p in parts]}


@app.command("submit")
def sweeps_submit(
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name or id (optional with --recipe)")
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(help="Search a recipe's parameters; --objective: a metric it logs"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="name=low..high[:log|:step=N] or name=a,b,c (repeat for more fields)"),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file: {field: {low, high, log, step} | [choices]}"),
    ] = None,
    sampler: Annotated[str, typer.Option(help="tpe, random or grid")] = "tpe",
    trials: Annotated[int, typer.Option(min=1, help="Trial budget")] = 20,
    time_limit: Annotated[
        float | None, typer.Option(help="Stop launching after this many seconds")
    ] = None,
    objective: Annotated[
        str, typer.Option(help="Validation metric, e.g. val_accuracy")
    ] = "val_loss",
    direction: Annotated[str, typer.Option(help="auto, minimize or maximize")] = "auto",
    parallel: Annotated[
        int, typer.Option(min=1, help="Trials at once (the engine caps it too)")
    ] = 1,
    pruner: Annotated[str, typer.Option(help="median, halving or none")] = "median",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value fixed for every trial")
    ] = None,
    name: Annotated[str, typer.Option(help="Sweep name")] = "",
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Queue a sweep; the engine launches its trials. Prints the sweep id."""
    from engine.services.sweep_actions import launch_recipe_sweep, launch_sweep

    current, db = ready()
    if recipe is None and dataset is None:
        fail("Give --dataset (a dataset name or id), or --recipe to search a script's parameters.")
    try:
        raw: dict[str, Any] = load_config_file(space) if space else {}
        raw.update(dict(parse_param(p) for p in param or []))
        if recipe is not None:
            overrides = parse_overrides(set_ or [])
            device = str(overrides.pop("device", "auto"))
            sweep_id = launch_recipe_sweep(
                current,
                db,
                actor(),
                recipe,
                {
                    "space": raw,
                    "sampler": sampler,
                    "pruner": pruner,
                    "objective": objective,
                    "direction": direction,
                    "max_trials": trials,
                    "time_limit_s": time_limit,
                    "parallelism": parallel,
                    "seed": seed,
                },
                name=name,
                base=overrides,
                dataset=dataset,
                device=device,
            )
            typer.echo(sweep_id)
            return
        sweep_id = launch_sweep(
            db,
            actor(),
            dataset,
            {
                "space": raw,
                "sampler": sampler,
                "pruner": pruner,
                "objective": objective,
                "direction": direction,
                "max_trials": trials,
                "time_limit_s": time_limit,
                "parallelism": parallel,
                "seed": seed,
            },
            name=name,
            base=parse_overrides(set_ or []),
        )
    except ValueError as exc:  # a --param bound that is not a number
        fail(str(exc))
    typer.echo(sweep_id)


@app.command("list")
def sweeps_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List sweeps, newest first."""
    _, db = ready()
    sweeps = sweep_store.list_sweeps(db)
    if as_json:
        print_json([s.__dict__ for s in sweeps])
        return
    if not sweeps:
        typer.echo("No sweeps. Start one: seedlab sweeps submit --dataset iris --param ...")
        return
    for s in sweeps:
        best = f"best run #{s.best_run_id}" if s.best_run_id else "no result yet"
        typer.echo(
            f"#{s.id}  {s.name}  {s.status}  {s.sampler}  {s.objective} ({s.direction})  "
            f"{s.max_trials} trials  {best}"
        )


@app.command("show")
def sweeps_show(sweep_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A sweep's trials: run, status, parameters and objective value."""
    from engine.services.sweeps import best_trial, load_trials

    _, db = ready()
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        fail(f"No sweep {sweep_id}.")
    trials = load_trials(db, sweep)
    best = best_trial(sweep, trials)
    rows = [
        {
            "trial": t.number,
            "run_id": t.run.id,
            "status": t.run.status,
            "state": t.shown_state,
            "value": t.value,
            "params": t.params,
            "best": best is not None and t.run.id == best.run.id,
        }
        for t in trials
    ]
    if as_json:
        print_json({"sweep": sweep.__dict__, "trials": rows})
        return
    typer.echo(
        f"#{sweep.id} {sweep.name}: {sweep.status}, {len(trials)}/{sweep.max_trials} trials, "
        f"{sweep.objective} ({sweep.direction})"
    )
    if sweep.error:
        typer.echo(f"error: {sweep.error}")
    for r in rows:
        value = "—" if r["value"] is None else f"{r['value']:.4f}"
        mark = "  ← best" if r["best"] else ""
        typer.echo(
            f"  {r['trial']:>3}  run #{r['run_id']:<5} {r['state']:<9} {value:>8}  "
            f"{_shown_params(r['params'])}{mark}"
        )


def _shown_params(params: dict[str, Any]) -> str:
    """Parameters as people read them: a sampled 0.0012345678912345 shows as 0.00123 (the JSON
    output keeps the full value)."""
    return ", ".join(f"{name}={format_setting(value)}" for name, value in params.items())


@app.command("cancel")
def sweeps_cancel(sweep_id: int) -> None:
    """Stop a sweep: no new trials; its queued and running trials are cancelled."""
    from engine.services.sweep_actions import cancel_sweep

    _, db = ready()
    status = cancel_sweep(db, actor(), sweep_id)
    if status is None:
        fail(f"No sweep {sweep_id}.")
    typer.echo(f"sweep {sweep_id}: {status}")


@app.command("best")
def sweeps_best(
    sweep_id: int,
    launch: Annotated[bool, typer.Option(help="Queue the best config as a full run")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value override for the launched run")
    ] = None,
) -> None:
    """Print the best trial's config, or launch it as an ordinary run (prints the run id)."""
    from engine.services.sweep_actions import launch_best
    from engine.services.sweeps import best_trial, load_trials

    _, db = ready()
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        fail(f"No sweep {sweep_id}.")
    if launch:
        typer.echo(launch_best(db, actor(), sweep_id, overrides=parse_overrides(set_ or [])))
        return
    best = best_trial(sweep, load_trials(db, sweep))
    if best is None:
        fail(f"Sweep {sweep_id} has no completed trial yet.")
    print_json({"run_id": best.run.id, "value": best.value, "config": best.run.config})
