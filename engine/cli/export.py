"""What is made from a completed run: `seedlab runs export|compress|variants|importance|report`.

The model out of the lab (export), smaller (compress, variants), explained (importance) and shared
(report). engine/cli/main.py adds these to the `runs` group beside engine/cli/runs.py's commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import actor, fail, print_json, ready

# Unnamed: its commands join the `runs` group (engine/cli/main.py).
app = typer.Typer()


@app.command("export")
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
    # torch and the exporters load only when asked
    from engine.services.job_work import export_run
    from engine.services.jobs import export_message

    settings, db = ready()
    result = export_run(settings, db, actor(), run_id, fmt.strip().lower(), output)
    if as_json:
        print_json(result.to_dict())
        return
    typer.echo(export_message(result.to_dict()))


@app.command("compress")
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
    from engine.deploy.variants import comparison_table, format_table
    from engine.services.job_work import compress_run

    settings, db = ready()
    method = method.strip().lower()
    result = compress_run(
        settings, db, actor(), run_id, method, sparsity=sparsity, epochs=epochs, overrides=overrides
    )
    row = result["variant"]
    record = {k: v for k, v in result.items() if k != "variant"}
    if as_json:
        print_json(result)
        return
    if method == "distill":
        typer.echo(
            f"queued student run #{row['run_id']}; the engine trains it "
            f"(`seedlab runs wait {row['run_id']}`), then `seedlab runs variants {run_id}`."
        )
    typer.echo(format_table(comparison_table(record)))


@app.command("variants")
def variants_cmd(run_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The run's compressed variants beside the original: size, CPU latency, test metric."""
    from engine.deploy.compress import refresh_students
    from engine.deploy.variants import comparison_table, format_table

    settings, db = ready()
    record = refresh_students(settings, db, run_id)
    if as_json:
        print_json(record)
    elif not record["variants"]:
        typer.echo(f"Run #{run_id} has no variants yet: `seedlab runs compress {run_id} -m ...`")
    else:
        typer.echo(format_table(comparison_table(record)))


@app.command("importance")
def runs_importance(
    run_id: int,
    rows: Annotated[int, typer.Option(min=2, help="Test rows to use at most")] = 5000,
    repeats: Annotated[int, typer.Option(min=1, help="Shuffles per column at most")] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Permutation feature importance of a completed table run (stored in its report)."""
    from engine.services.job_work import compute_importance

    settings, db = ready()
    result = compute_importance(settings, db, actor(), run_id, max_rows=rows, max_repeats=repeats)
    if as_json:
        print_json(result)
        return
    change = "drop" if result["higher_is_better"] else "rise"
    typer.echo(
        f"Permutation importance of run {run_id}: {result['metric']} {change} when a column is "
        f"shuffled ({result['n_rows']} test rows, {result['n_repeats']} repeats, "
        f"{result['seconds']:.2f} s)"
    )
    width = max(len(f["name"]) for f in result["features"])
    for feature in result["features"]:
        typer.echo(
            f"  {feature['name']:<{width}}  {feature['importance']:+.4f} ± {feature['std']:.4f}"
        )


@app.command("report")
def runs_report(
    run_id: int,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write")],
) -> None:
    """Write one self-contained HTML file of a run (config, curves, evaluation, importance)
    that opens offline in any browser."""
    from engine.services.runs import write_html_report

    settings, db = ready()
    if output.is_dir():
        output = output / f"run-{run_id}-report.html"
    try:
        size = write_html_report(settings, db, actor(), run_id, output)
    except OSError as exc:
        fail(f"Cannot write {output}: {exc.strerror or exc}. Choose another --output.")
    typer.echo(f"Wrote {output} ({size / 1e6:.1f} MB; opens offline).")
