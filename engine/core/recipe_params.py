"""A recipe's parameters: read from its `seedlab.yaml`, or failing that from its argparse calls;
values checked against them; and the `--name value` arguments the script is started with.

Why argparse options are read with `ast`, not by running `python train.py --help`: registering
a recipe must not execute the team's code (its imports may take seconds — torch — or need a GPU,
a dataset, or packages only its own venv has, and any top-level code would run on the server at
registration time), and `--help` output is text meant for people, whose layout changes between
Python versions. The parse sees only literal values: a default computed at run time (e.g.
`default=os.cpu_count()`) is read as "no default" and the script's own default then applies.

seedlab.yaml (beside the entry point):

    entry: train.py              # optional; `recipes add --entry` wins
    params:
      lr: {type: float, default: 0.001, range: [1.0e-5, 1.0], help: learning rate}
      optimizer: {type: str, default: adam, choices: [adam, sgd]}
      epochs: {type: int, default: 10, range: [1, 1000]}
      augment: {type: bool, default: false}

A bool parameter is passed as a bare `--name` when true and left out when false (the argparse
`store_true` convention); an argparse `store_false` flag is a bool parameter too, false unless
chosen (choosing it passes the flag). Every other one is passed as `--name value`.
"""

from __future__ import annotations

import ast
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.core.errors import ConfigError

PARAM_TYPES = ("int", "float", "str", "bool")
SPEC_FILE = "seedlab.yaml"


@dataclass(frozen=True)
class RecipeParam:
    name: str
    type: str = "str"  # int | float | str | bool
    default: Any = None  # None: no default (required unless the script has its own)
    low: float | None = None
    high: float | None = None
    choices: list[Any] = field(default_factory=list)
    help: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spec_error(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}. Fix the file and register the recipe again.")


def _param_from_yaml(name: str, raw: Any, where: str) -> RecipeParam:  # noqa: ANN401
    if not isinstance(raw, dict):
        raw = {"default": raw}  # `lr: 0.01` is a float parameter with that default
    kind = raw.get("type")
    default = raw.get("default")
    if kind is None:
        kind = {bool: "bool", int: "int", float: "float"}.get(type(default), "str")
    if kind not in PARAM_TYPES:
        raise _spec_error(where, f"parameter {name!r} has type {kind!r}; use one of {PARAM_TYPES}")
    low = high = None
    if "range" in raw:
        bounds = raw["range"]
        if not (isinstance(bounds, list) and len(bounds) == 2):
            raise _spec_error(where, f"parameter {name!r}: range is [low, high]")
        low, high = float(bounds[0]), float(bounds[1])
        if low >= high:
            raise _spec_error(where, f"parameter {name!r}: range low must be below high")
    choices = list(raw.get("choices") or [])
    param = RecipeParam(
        name=str(name),
        type=kind,
        default=None,
        low=low,
        high=high,
        choices=choices,
        help=str(raw.get("help") or ""),
    )
    if default is not None:
        try:
            default = coerce(param, default)
        except ConfigError as exc:
            raise _spec_error(where, f"the default of {name!r} is not valid ({exc})") from None
    return RecipeParam(**{**param.to_dict(), "default": default})


def params_from_yaml(path: Path) -> tuple[list[RecipeParam], str | None]:
    """The parameters and the entry point (None: not named) a seedlab.yaml declares."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise _spec_error(str(path), f"not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise _spec_error(str(path), "expected a mapping with `params:` (and optional `entry:`)")
    raw = data.get("params") or {}
    if isinstance(raw, list):  # [{name: lr, type: float, ...}, ...] is accepted too
        raw = {item.get("name"): item for item in raw if isinstance(item, dict)}
    if not isinstance(raw, dict):
        raise _spec_error(str(path), "`params:` is a mapping of name: {type, default, ...}")
    params = [_param_from_yaml(str(n), v, str(path)) for n, v in raw.items()]
    entry = data.get("entry")
    return params, (str(entry) if entry else None)


def _literal(node: ast.AST | None) -> Any:  # noqa: ANN401
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def params_from_argparse(source: str) -> list[RecipeParam]:
    """The `--options` of every `*.add_argument(...)` call in a script's source (positional
    arguments are left out: the engine passes parameters as `--name value`)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError(
            f"The entry point is not valid Python (line {exc.lineno}: {exc.msg}); fix it and "
            "register the recipe again."
        ) from None
    params: dict[str, RecipeParam] = {}
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            continue
        flags = [_literal(a) for a in node.args]
        longs = [f for f in flags if isinstance(f, str) and f.startswith("--")]
        if not longs:
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        name = longs[0][2:]
        action = _literal(keywords.get("action"))
        default = _literal(keywords.get("default"))
        type_node = keywords.get("type")
        type_name = type_node.id if isinstance(type_node, ast.Name) else None
        if action in ("store_true", "store_false"):
            # A flag: the parameter says whether to pass it (for store_false, passing it turns
            # the script's value off), so it starts false whatever the script's own default.
            kind, default = "bool", False
        elif type_name in ("int", "float"):
            kind = type_name
        elif type_name is None and isinstance(default, bool):
            kind = "bool"
        elif type_name is None and isinstance(default, int | float):
            kind = "float" if isinstance(default, float) else "int"
        else:
            kind = "str"
        choices = _literal(keywords.get("choices"))
        param = RecipeParam(
            name=name,
            type=kind,
            choices=list(choices) if isinstance(choices, list | tuple) else [],
            help=str(_literal(keywords.get("help")) or ""),
        )
        if default is not None:
            try:
                default = coerce(param, default)
            except ConfigError:
                default = None  # the script's own default applies
        params[name] = RecipeParam(**{**param.to_dict(), "default": default})
    return list(params.values())


def read_params(folder: Path, entry: str) -> tuple[list[RecipeParam], str]:
    """The parameters of the recipe in `folder` and where they came from ("seedlab.yaml" or
    "argparse"): the spec file beside the entry point wins."""
    script = folder / entry
    spec = script.parent / SPEC_FILE
    if spec.is_file():
        params, _ = params_from_yaml(spec)
        return params, SPEC_FILE
    return params_from_argparse(script.read_text(encoding="utf-8")), "argparse"


def coerce(param: RecipeParam, value: Any) -> Any:  # noqa: ANN401
    """`value` (text from a form or --set, or a YAML value) as the parameter's type, checked
    against its range and choices; ConfigError in plain words otherwise."""
    text = str(value).strip()
    try:
        if param.type == "bool":
            if isinstance(value, bool):
                out: Any = value
            elif text.lower() in ("1", "true", "yes", "on"):
                out = True
            elif text.lower() in ("0", "false", "no", "off"):
                out = False
            else:
                raise ValueError
        elif param.type == "int":
            number = float(value) if not isinstance(value, int) else value
            if number != int(number):
                raise ValueError
            out = int(number)
        elif param.type == "float":
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
        else:
            out = text if not isinstance(value, str) else value
    except (TypeError, ValueError):
        raise ConfigError(
            f"{param.name} = {text!r} is not a{'n' if param.type == 'int' else ''} "
            f"{ {'bool': 'true/false value', 'int': 'int', 'float': 'number'}[param.type] }"
        ) from None
    if param.choices and out not in param.choices:
        raise ConfigError(
            f"{param.name} = {out!r} is not one of the choices: "
            + ", ".join(str(c) for c in param.choices)
        )
    if param.low is not None and param.high is not None and not param.low <= out <= param.high:
        raise ConfigError(
            f"{param.name} = {out!r} is outside its range {param.low:g} to {param.high:g}"
        )
    return out


def resolve_values(params: list[RecipeParam], given: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `given`, every value checked. Unknown names are refused, naming
    the known ones (a typo must not be silently ignored by the script)."""
    known = {p.name: p for p in params}
    unknown = [k for k in given if k not in known]
    if unknown:
        names = ", ".join(known) or "none"
        raise ConfigError(
            f"Unknown recipe parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {names}."
        )
    values: dict[str, Any] = {}
    for param in params:
        if param.name in given:
            values[param.name] = coerce(param, given[param.name])
        elif param.default is not None:
            values[param.name] = param.default
    return values


def script_arguments(values: dict[str, Any]) -> list[str]:
    """`--name value` for each parameter (a true bool as a bare `--name`, a false one left out)."""
    argv: list[str] = []
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                argv.append(f"--{name}")
            continue
        argv += [f"--{name}", str(value)]
    return argv
