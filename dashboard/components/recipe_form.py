"""New run's "Recipe" mode: a registered script (`seedlab recipes add`), its parameters as a
form, an optional Seedlab dataset whose path the script gets (SEEDLAB_DATASET_PATH).

Code is never uploaded here: recipes are registered on the server by an admin. `?recipe=NAME`
preselects one; a clone of a recipe run (`?clone=ID`) fills the form from that run and runs
that run's own code snapshot, whatever the recipe's folder holds now.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import auth, data
from dashboard.components.projects import current_project_id
from db.records import RunRecord
from engine.core.recipe_params import RecipeParam
from engine.services.permissions import Permission
from engine.services.recipes import list_recipes, recipe_info, submit_recipe_run

KEY = "nr_recipe_"


def _widget(param: RecipeParam, start: Any) -> Any:  # noqa: ANN401 - the parameter's type
    key = f"{KEY}param_{param.name}"
    helptext = param.help or None
    if param.choices:
        options = list(param.choices)
        index = options.index(start) if start in options else 0
        return st.selectbox(param.name, options, index=index, key=key, help=helptext)
    if param.type == "bool":
        return st.checkbox(param.name, value=bool(start), key=key, help=helptext)
    if param.type in ("int", "float"):
        cast = int if param.type == "int" else float
        bounds: dict[str, Any] = {}
        if param.low is not None and param.high is not None:
            bounds = {"min_value": cast(param.low), "max_value": cast(param.high)}
        value = cast(start) if start is not None else (bounds.get("min_value") or cast(0))
        return st.number_input(
            param.name,
            value=value,
            key=key,
            help=helptext,
            format=None if param.type == "int" else "%g",
            step=1 if param.type == "int" else None,
            **bounds,
        )
    return st.text_input(param.name, value="" if start is None else str(start), key=key)


def recipe_form(source: RunRecord | None) -> None:
    """The whole Recipe mode of New run (the caller stops the page after it)."""
    db = data.get_db()
    recipes = [r.name for r in list_recipes(db)]
    if source is not None and source.config.get("recipe") not in recipes:
        recipes.append(source.config["recipe"])  # a clone outlives its recipe's registration
    if not recipes:
        st.info(
            "No recipes yet. An admin registers a training script that lives on the server "
            "with `seedlab recipes add PATH --name NAME`; it then shows here.",
            icon=":material/info:",
        )
        return
    wanted = source.config.get("recipe") if source is not None else st.query_params.get("recipe")
    name = st.selectbox(
        "Recipe",
        recipes,
        index=recipes.index(wanted) if wanted in recipes else 0,
        key=KEY + "name",
        help="A script registered on the server (seedlab recipes list).",
    )
    cloning = source is not None and source.config.get("recipe") == name
    params: list[RecipeParam] | None = None
    with data.shown_errors("reading the recipe"):
        if cloning:
            from engine.core.recipe_params import read_params
            from engine.services.recipes import snapshot_dir

            code = snapshot_dir(data.get_settings(), source.id)
            params, _ = read_params(code, source.config["entry"])
            start = dict(source.config.get("params") or {})
            st.caption(f"Run #{source.id}'s own code, as it ran then.")
        else:
            info = recipe_info(db, name)
            params, start = info.params, {p.name: p.default for p in info.params}
            st.caption(
                f"`{info.record.path}/{info.record.entry}` · parameters from {info.params_from}"
            )
    if params is None:  # the sentence is on show (data.shown_errors)
        return
    values: dict[str, Any] = {}
    if params:
        st.subheader("Parameters")
        for start_row in range(0, len(params), 3):
            row = params[start_row : start_row + 3]
            for col, param in zip(st.columns(3)[: len(row)], row, strict=True):
                with col:
                    values[param.name] = _widget(param, start.get(param.name))
    else:
        st.caption("This script declares no parameters (no seedlab.yaml, no argparse options).")
    datasets = {d.name: d for d in data.datasets()}
    choices = ["(none)", *datasets]
    first = source.dataset_name if source is not None and source.dataset_name else "(none)"
    dataset = st.selectbox(
        "Dataset (optional)",
        choices,
        index=choices.index(first) if first in choices else 0,
        key=KEY + "dataset",
        help="A Seedlab dataset; the script gets its stored path in SEEDLAB_DATASET_PATH.",
    )
    device = st.radio("Device", ["auto", "cpu", "cuda"], horizontal=True, key=KEY + "device")
    run_name = st.text_input(
        "Run name",
        max_chars=200,
        key=KEY + "run_name",
        placeholder="automatic, from the recipe and its parameters",
    )
    if st.button(
        "Start run",
        type="primary",
        icon=":material/play_arrow:",
        key=KEY + "start",
        disabled=not auth.can(Permission.LAUNCH),
        help=None if auth.can(Permission.LAUNCH) else "Your role cannot launch runs.",
    ):
        with data.shown_errors("queuing the run"):
            run_id = submit_recipe_run(
                data.get_settings(),
                db,
                auth.require(Permission.LAUNCH),
                name,
                values,
                dataset=None if dataset == "(none)" else dataset,
                device=device,
                name=run_name,
                project_id=current_project_id(),
                parent_run_id=source.id if cloning else None,
            )
            data.clear_caches()
            data.open_run(run_id)
