"""`seedlab models register|list|show|promote|delete`: the model registry; `serve|unserve|requests`:
its production versions over HTTP (engine/services/serving.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from db.registry import ModelVersionRecord
from engine.cli.common import actor, fail, print_json, ready

app = typer.Typer(
    help="The model registry: named, versioned models from completed runs, with stages "
    "(none, staging, production, archived; one production version per name).",
    no_args_is_help=True,
)

# The metric a version is shown with: the first its run has.
HEADLINE_KEYS = ("test_accuracy", "test_rmse", "test_f1_macro", "test_mae")


def _headline(version: ModelVersionRecord) -> str:
    for key in HEADLINE_KEYS:
        if key in version.metrics:
            return f"{key.removeprefix('test_')} {version.metrics[key]:.4g}"
    return ""


def _version_line(v: ModelVersionRecord) -> str:
    return (
        f"v{v.version:<4} {v.stage:<11} run {v.run_id:<6} {v.dataset_name[:20]:<20} "
        f"{_headline(v):<22} {v.created_at:%Y-%m-%d %H:%M}"
    )


@app.command("register")
def models_register(
    run_id: int,
    name: str,
    stage: Annotated[str, typer.Option(help="none, staging, production or archived")] = "none",
    description: Annotated[str, typer.Option(help="A note on this version")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register a completed run's model as the next version of NAME."""
    from engine.services.model_registry import register

    settings, db = ready()
    version = register(settings, db, actor(), run_id, name, stage=stage, description=description)
    if as_json:
        print_json(version.to_dict())
        return
    typer.echo(f"Registered run {run_id} as {version.name!r} v{version.version} ({version.stage}).")


@app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered model names with their production and latest versions."""
    from db import registry

    _, db = ready()
    models = registry.list_models(db)
    if as_json:
        print_json(
            [
                {
                    "name": m.name,
                    "versions": len(m.versions),
                    "latest_version": m.latest.version,
                    "production_version": m.production.version if m.production else None,
                    "default_version": m.default.version,
                    "default_run_id": m.run_id,
                }
                for m in models
            ]
        )
        return
    if not models:
        typer.echo("No registered models yet. Register one: seedlab models register RUN_ID NAME")
        return
    typer.echo(f"{'name':<30} {'versions':>8} {'production':>10} {'latest':>6}  default run")
    for m in models:
        production = f"v{m.production.version}" if m.production else "—"
        typer.echo(
            f"{m.name[:30]:<30} {len(m.versions):>8} {production:>10} "
            f"{'v' + str(m.latest.version):>6}  {m.run_id}"
        )


@app.command("show")
def models_show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every version of a registered model: stage, source run, dataset, test metric."""
    from engine.services.model_registry import find_model

    _, db = ready()
    model = find_model(db, name)
    if as_json:
        print_json(
            {
                "name": model.name,
                "default_version": model.default.version,
                "versions": [v.to_dict() for v in model.versions],
            }
        )
        return
    typer.echo(f"{model.name} — default v{model.default.version} (run {model.run_id})")
    for version in model.versions:
        typer.echo("  " + _version_line(version))


@app.command("promote")
def models_promote(
    name: str,
    version: int,
    stage: Annotated[str, typer.Argument(help="none, staging, production or archived")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move a version to a stage; to production, the previous production version is archived."""
    from db import registry
    from engine.services.model_registry import promote

    _, db = ready()
    before = registry.production_version(db, name.strip())
    record = promote(db, actor(), name, version, stage)
    if as_json:
        print_json(record.to_dict())
        return
    typer.echo(f"{record.name!r} v{record.version} is now {record.stage}.")
    if stage == "production" and before is not None and before.version != version:
        typer.echo(f"{record.name!r} v{before.version} (production before) is now archived.")


@app.command("delete")
def models_delete(
    name: str,
    version: int,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Remove a version from the registry (its run and files stay; production is refused)."""
    from engine.services.model_registry import unregister

    _, db = ready()
    if not yes and not typer.confirm(f"Remove {name!r} v{version} from the registry?"):
        fail("Nothing removed.")
    unregister(db, actor(), name, version)
    typer.echo(f"Removed {name!r} v{version} from the registry; run and files are kept.")


@app.command("serve")
def models_serve(
    name: str,
    host: Annotated[str, typer.Option(help="The address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on")] = 8600,
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Make a new token (the old one stops working)")
    ] = False,
) -> None:
    """Serve NAME's production version over HTTP until Ctrl-C (turns serving on, prints the
    token once when it is new, the URL and a curl example). Promoting another version switches
    the answers at the next request."""
    import json

    import uvicorn

    from dashboard.serve_api import standalone_app
    from engine.services import serving

    settings, db = ready()
    token = serving.enable(db, actor(), name, new_token=new_token)
    name = name.strip()
    server = serving.ModelServer(settings, db, only={name})
    url = serving.endpoint(f"http://{'localhost' if host == '127.0.0.1' else host}:{port}", name)
    production = serving.production_label(db, name)
    typer.echo(f"Serving {production} at {url}")
    if token:
        typer.echo(f"Model token (shown only now; keep it secret): {token}")
    else:
        typer.echo(
            "The model keeps the token it had (shown when serving was first turned on); "
            "--new-token makes a new one."
        )
    example = json.dumps(server.example(name) or {"rows": [{"column": 1.5}]})
    typer.echo("Try it:\n" + serving.curl_example(url, example, token or "$SEEDLAB_MODEL_TOKEN"))
    typer.echo(
        f"Rate limit: {settings.serve_rate_per_min} requests per minute per token "
        "(SEEDLAB_SERVE_RATE_PER_MIN). Ctrl-C stops the server; `seedlab models unserve "
        f"{name}` turns serving off."
    )
    uvicorn.run(standalone_app(server), host=host, port=port, log_level="warning")


@app.command("unserve")
def models_unserve(name: str) -> None:
    """Stop serving NAME over HTTP (here and in the dashboard); its token is kept."""
    from engine.services import serving

    _, db = ready()
    serving.disable(db, actor(), name)
    typer.echo(f"{name.strip()!r} is no longer served; its requests now get 404.")


@app.command("requests")
def models_requests(
    name: str,
    limit: Annotated[int, typer.Option(help="How many of the newest requests to list")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """NAME's recent requests (status, latency, items, client) and p50/p95 latency."""
    from engine.services import serving

    _, db = ready()
    figures = serving.latency(db, name)
    recent = serving.recent_requests(db, name, limit)
    if as_json:
        print_json(
            {
                "requests": figures.requests,
                "p50_ms": figures.p50_ms,
                "p95_ms": figures.p95_ms,
                "recent": [r.__dict__ for r in recent],
            }
        )
        return
    if not figures.requests:
        typer.echo(f"No requests to {name.strip()!r} yet.")
        return
    p50 = "—" if figures.p50_ms is None else f"{figures.p50_ms:.1f} ms"
    p95 = "—" if figures.p95_ms is None else f"{figures.p95_ms:.1f} ms"
    typer.echo(f"{figures.requests} request(s) logged; latency p50 {p50}, p95 {p95}")
    typer.echo(f"{'at (UTC)':<19}  {'ver':>4} {'status':>6} {'ms':>9} {'items':>5}  client  error")
    for r in recent:
        version = "—" if r.version is None else f"v{r.version}"
        typer.echo(
            f"{r.at:%Y-%m-%d %H:%M:%S}  {version:>4} {r.status:>6} {r.latency_ms:>9.1f} "
            f"{r.items:>5}  {r.client}  {(r.error or '')[:80]}"
        )
