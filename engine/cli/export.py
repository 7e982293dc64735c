"""`seedlab runs export|compress|variants`: a completed run's model out of the lab, smaller.

Registered on the `runs` group by engine/cli/main.py (`register(runs_app)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.core.config import parse_overrides


def _cli() -> Any:  # noqa: ANN401
    # Imported late: engine.cli.main registers this module's commands, so a top-level import of it
    # would be circular.
    from engine.cli import main as cli

    return cli


def export_cmd(
    run_id: int,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="torchscript | onnx | pt2 | bundle"),
    ] = "onnx",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="folder to write into (default: the run's exports/)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Export a completed run's model; ONNX is checked against PyTorch on the test split."""
    from engine.deploy.export import export_run  # torch and the exporters load only when asked

    settings, db = _cli()._ready()
    result = export_run(settings, db, run_id, fmt.strip().lower(), output)
    if as_json:
        _cli()._print_json(result.to_dict())
        return
    typer.echo(f"wrote {result.path} ({result.size_bytes:,} bytes)")
    if result.max_abs_diff is not None:
        typer.echo(
            f"onnxruntime vs PyTorch on {result.checked_rows:,} test rows: "
            f"max abs difference {result.max_abs_diff:.2e}"
        )


def compress_cmd(
    run_id: int,
    method: Annotated[str, typer.Option("--method", "-m", help="quantize | prune | distill")],
    sparsity: Annotated[
        float, typer.Option(help="prune: share of Linear/Conv weights set to zero")
    ] = 0.5,
    epochs: Annotated[int, typer.Option(help="prune: fine-tune epochs after pruning")] = 2,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="distill: student config, e.g. hidden_sizes=32 distill_temperature=4",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Make a smaller variant of a completed run and print how it compares with the original."""
    from engine.core.errors import ConfigError
    from engine.deploy import compress
    from engine.deploy.variants import METHODS, comparison_table, format_table

    settings, db = _cli()._ready()
    method = method.strip().lower()
    if method == "quantize":
        row = compress.quantize_run(settings, db, run_id)
    elif method == "prune":
        row = compress.prune_run(settings, db, run_id, target=sparsity, epochs=epochs)
    elif method == "distill":
        from engine.services.distillation import distill_run

        row = distill_run(settings, db, run_id, parse_overrides(overrides or []))
    else:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    record = compress.refresh_students(settings, db, run_id)
    if as_json:
        _cli()._print_json({"variant": row, **record})
        return
    if method == "distill":
        typer.echo(
            f"queued student run #{row['run_id']}; the engine trains it "
            f"(`seedlab runs wait {row['run_id']}`), then `seedlab runs variants {run_id}`."
        )
    typer.echo(format_table(comparison_table(record)))


def variants_cmd(run_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The run's compressed variants beside the original: size, CPU latency, test metric."""
    from engine.deploy.compress import refresh_students
    from engine.deploy.variants import comparison_table, format_table

    settings, db = _cli()._ready()
    record = refresh_students(settings, db, run_id)
    if as_json:
        _cli()._print_json(record)
    elif not record["variants"]:
        typer.echo(f"Run #{run_id} has no variants yet: `seedlab runs compress {run_id} -m ...`")
    else:
        typer.echo(format_table(comparison_table(record)))


def register(runs_app: typer.Typer) -> None:
    runs_app.command("export")(export_cmd)
    runs_app.command("compress")(compress_cmd)
    runs_app.command("variants")(variants_cmd)
