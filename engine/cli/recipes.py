"""`seedlab recipes add|list|show|remove`: register a team's own training code (admins).

Launching one is `seedlab runs submit --recipe NAME --set lr=0.01 [--dataset D]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import actor, print_json, ready

app = typer.Typer(
    help="Register training scripts that live on this server (recipes).", no_args_is_help=True
)


def _describe(info) -> None:  # noqa: ANN001 - engine.services.recipes.RecipeInfo
    record = info.record
    typer.echo(f"{record.name}: {record.path}/{record.entry}")
    typer.echo(f"  python: {record.python or 'the server’s own'}")
    typer.echo(f"  parameters (from {info.params_from}):")
    for p in info.params:
        bounds = (
            f" in [{p.low:g}, {p.high:g}]"
            if p.low is not None and p.high is not None
            else (f" one of {', '.join(map(str, p.choices))}" if p.choices else "")
        )
        default = "" if p.default is None else f" = {p.default}"
        helptext = f"  — {p.help}" if p.help else ""
        typer.echo(f"    --{p.name} ({p.type}{bounds}){default}{helptext}")
    if not info.params:
        typer.echo("    none found (no seedlab.yaml and no argparse --options)")


@app.command("add")
def recipes_add(
    path: Annotated[Path, typer.Argument(help="Folder (or git checkout) holding the script")],
    name: Annotated[str, typer.Option(help="The recipe's name")],
    entry: Annotated[
        str | None, typer.Option(help="Entry script in PATH (default: seedlab.yaml's, train.py)")
    ] = None,
    python: Annotated[
        str | None, typer.Option(help="The venv's bin/python to run it with (default: Seedlab's)")
    ] = None,
) -> None:
    """Register the code at PATH as a recipe members can launch."""
    from engine.services.recipes import add_recipe

    _, db = ready()
    info = add_recipe(db, actor(), path, name, entry=entry, python=python)
    _describe(info)


@app.command("list")
def recipes_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The registered recipes."""
    from engine.services.recipes import list_recipes

    _, db = ready()
    records = list_recipes(db)
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    if not records:
        typer.echo("No recipes yet; an admin adds one with `seedlab recipes add PATH --name N`.")
    for r in records:
        typer.echo(f"{r.name}\t{r.path}/{r.entry}")


@app.command("show")
def recipes_show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A recipe and its parameters, as its folder declares them now."""
    from engine.services.recipes import recipe_info

    _, db = ready()
    info = recipe_info(db, name)
    if as_json:
        print_json(info.to_dict())
    else:
        _describe(info)


@app.command("remove")
def recipes_remove(name: str) -> None:
    """Forget a recipe (its runs keep their copy of the code)."""
    from engine.services.recipes import remove_recipe

    _, db = ready()
    remove_recipe(db, actor(), name)
    typer.echo(f"Recipe {name} removed; its runs keep their code.")
