"""`seedlab datasets add|list|show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from db import datasets as dataset_store
from engine.cli.common import actor, print_json, ready

app = typer.Typer(help="Add and list datasets.", no_args_is_help=True)


@app.command("add")
def datasets_add(
    file: Annotated[
        Path, typer.Argument(help="CSV, TSV or Parquet file, or a ZIP of image class folders")
    ],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name)")] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="Column to predict (default: the one named like a target — target, label, "
            "class, y, … — or, when none is, the command refuses and lists the columns)"
        ),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="auto (a table whose content is one free-text column is text), tabular or text"
        ),
    ] = "auto",
    text_column: Annotated[
        str | None, typer.Option(help="Text datasets: the column with the texts (implies text)")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Store it even when the target looks like an identifier, a date or free text "
            "(a warning line instead of a refusal)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the dataset as JSON")] = False,
) -> None:
    """Validate a table (or a ZIP of images, one folder per class) and store it as a dataset."""
    from engine.services.datasets import add_dataset_file

    settings, db = ready()
    record = add_dataset_file(
        settings,
        db,
        actor(),
        file,
        name=name,
        target=target,
        kind=kind,
        text_column=text_column,
        strict_target=not force,
    )
    # Notes on stderr, so --json output stays one JSON document.
    if record.kind != "image" and target is None:
        typer.echo(
            f"note: target {record.target!r} chosen because it is named like a target; "
            "--target COLUMN picks another.",
            err=True,
        )
    for warning in record.schema.get("target_warnings", []):
        typer.echo(f"warning: {warning['message']}", err=True)
    if as_json:
        print_json(record.to_dict())
        return
    if record.kind == "image":
        typer.echo(
            f"Added image dataset {record.name!r} (id {record.id}): {record.n_rows} images in "
            f"{len(record.schema['classes'])} classes: {', '.join(record.schema['classes'][:10])}"
        )
        return
    extra = ""
    if record.task == "classification":
        extra = f", classes: {', '.join(record.schema['classes'][:10])}"
    inputs = f"{len(record.schema['features'])} features"
    if record.kind == "text":
        inputs = f"text in column {record.schema['text_column']!r}"
    typer.echo(
        f"Added dataset {record.name!r} (id {record.id}): {record.n_rows} rows, "
        f"{inputs}, target {record.target!r} → {record.task}{extra}"
    )


@app.command("list")
def datasets_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List datasets."""
    _, db = ready()
    records = dataset_store.list_datasets(db)
    if as_json:
        print_json(
            [
                {k: v for k, v in r.to_dict().items() if k != "schema"}
                | {"features": r.schema["features"]}
                for r in records
            ]
        )
        return
    if not records:
        typer.echo("No datasets yet. Add one: seedlab datasets add FILE --name N --target COL")
        return
    typer.echo(f"{'id':>4}  {'name':<24} {'kind':<8} {'task':<15} {'rows':>8}  target")
    for r in records:
        typer.echo(
            f"{r.id:>4}  {r.name[:24]:<24} {r.kind:<8} {r.task:<15} {r.n_rows:>8}  {r.target}"
        )


@app.command("show")
def datasets_show(
    ref: Annotated[str, typer.Argument(help="Dataset id or name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a dataset's profile."""
    from engine.data.columns import profile_table
    from engine.services.launch import find_dataset

    _, db = ready()
    record = find_dataset(db, ref)
    if as_json:
        print_json(record.to_dict())
        return
    if record.kind == "image":
        typer.echo(f"{record.name} (id {record.id}): {record.n_rows} images, task {record.task}")
        stats = record.schema["image_stats"]
        typer.echo(
            f"width {stats['width']}, height {stats['height']}, modes {stats['modes']}; "
            f"auto image_size {record.schema['auto_image_size']}, "
            f"channels {record.schema['auto_channels']}"
        )
        for name, count in record.schema["class_counts"].items():
            typer.echo(f"  {name:<24} {count:>7}")
        return
    typer.echo(
        f"{record.name} (id {record.id}): {record.n_rows} rows, target {record.target!r}, "
        f"task {record.task}"
    )
    for warning in record.schema.get("target_warnings", []):
        typer.echo(f"warning: {warning['message']}")
    typer.echo(profile_table(record).to_string(index=False))
