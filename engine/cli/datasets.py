"""`seedlab datasets add|list|show|versions|relabel|exclude|diff|export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from db import datasets as dataset_store
from db.records import DatasetRecord
from engine.cli.common import actor, fail, print_json, ready

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
    new_version: Annotated[
        bool,
        typer.Option(
            "--new-version",
            help="The name exists already: store the file as its next version (same kind and "
            "target) instead of refusing",
        ),
    ] = False,
) -> None:
    """Validate a table (or a ZIP of images, one folder per class) and store it as a dataset."""
    from engine.services.dataset_versions import add_upload_version
    from engine.services.datasets import add_dataset_file

    settings, db = ready()
    who = actor()

    def store(as_name: str | None) -> DatasetRecord:
        return add_dataset_file(
            settings,
            db,
            who,
            file,
            name=as_name,
            target=target,
            kind=kind,
            text_column=text_column,
            strict_target=not force,
        )

    if new_version:
        existing = name or file.stem
        version = add_upload_version(settings, db, who, existing, store)
        if as_json:
            print_json(version.to_dict())
            return
        typer.echo(
            f"Added version {version.number} of {existing!r}: {version.n_rows} rows "
            f"({_diff_text(version.diff)} from version {version.parent_number})"
        )
        return
    record = store(name)
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
    from engine.services.dataset_versions import list_versions
    from engine.services.launch import find_dataset

    _, db = ready()
    record = find_dataset(db, ref)
    if as_json:
        print_json(record.to_dict())
        return
    latest = list_versions(db, record.id)[-1]
    ids = "image paths (e.g. cat/001.png)" if record.kind == "image" else "row positions 0, 1, …"
    typer.echo(
        f"version {latest.number} is the latest ({latest.n_rows} rows; `seedlab datasets "
        f"versions {record.name}`); row ids are {ids}"
    )
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


def _diff_text(diff: dict) -> str:
    return (
        f"+{diff.get('added', 0)} added, -{diff.get('removed', 0)} removed, "
        f"~{diff.get('relabelled', 0)} relabelled"
    )


@app.command("versions")
def datasets_versions(
    ref: Annotated[str, typer.Argument(help="Dataset name or id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a dataset's versions (oldest first): rows, classes, what changed, who and why."""
    from engine.services.dataset_versions import list_versions, resolve

    _, db = ready()
    record, _ = resolve(db, ref)
    versions = list_versions(db, record.id)
    if as_json:
        print_json([{k: v for k, v in x.to_dict().items() if k != "base_schema"} for x in versions])
        return
    typer.echo(f"{record.name} (id {record.id}): {len(versions)} version(s)")
    for v in versions:
        when = v.created_at.strftime("%Y-%m-%d %H:%M")
        parent = f" from v{v.parent_number}" if v.parent_number else ""
        typer.echo(
            f"  v{v.number:<3} {v.n_rows:>8} rows  {_diff_text(v.diff)}{parent}  {when}  "
            f"{v.created_by or '-'}{'  ' + v.note if v.note else ''}"
        )


def _edit(name: str, relabel: dict[str, str], exclude: list[str], note: str) -> None:
    from engine.services.dataset_versions import edit, resolve

    settings, db = ready()
    record, _ = resolve(db, name)
    version = edit(settings, db, actor(), record.id, relabel=relabel, exclude=exclude, note=note)
    typer.echo(
        f"{record.name}@{version.number}: version {version.number}, {version.n_rows} rows "
        f"({_diff_text(version.diff)} from version {version.parent_number})"
    )


@app.command("relabel")
def datasets_relabel(
    name: Annotated[str, typer.Argument(help="Dataset name or id")],
    row: Annotated[list[str], typer.Option(help="Row id (repeatable; pairs with --label)")],
    label: Annotated[list[str], typer.Option(help="The row's right label (one per --row)")],
    note: Annotated[str, typer.Option(help="Why (kept with the version)")] = "",
) -> None:
    """Set the label of rows; saves the next version and prints it."""
    if len(row) != len(label):
        fail(
            f"Give one --label per --row (got {len(row)} rows and {len(label)} labels), e.g. "
            "--row 12 --label cat --row 40 --label dog."
        )
    _edit(name, dict(zip(row, label, strict=True)), [], note)


@app.command("exclude")
def datasets_exclude(
    name: Annotated[str, typer.Argument(help="Dataset name or id")],
    row: Annotated[list[str], typer.Option(help="Row id to leave out (repeatable)")],
    note: Annotated[str, typer.Option(help="Why (kept with the version)")] = "",
) -> None:
    """Leave rows out of the next version (they stay in earlier ones); prints the version."""
    _edit(name, {}, list(row), note)


@app.command("diff")
def datasets_diff(
    name: Annotated[str, typer.Argument(help="Dataset name or id")],
    v1: Annotated[int, typer.Argument(help="From this version")],
    v2: Annotated[int, typer.Argument(help="To this version")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rows added, removed and relabelled from version V1 to V2."""
    from engine.services.dataset_versions import diff, resolve

    settings, db = ready()
    record, _ = resolve(db, name)
    out = diff(db, record.id, v1, v2, settings)
    if as_json:
        print_json(out)
        return
    typer.echo(f"{record.name} v{v1} → v{v2}: {_diff_text(out)}")
    for r in out["relabelled_rows"]:
        typer.echo(f"  ~ {r['row_id']}: {r['from']} → {r['to']}")
    for r in out["removed_rows"]:
        typer.echo(f"  - {r}")
    for r in out["added_rows"]:
        typer.echo(f"  + {r}")


@app.command("export")
def datasets_export(
    name: Annotated[str, typer.Argument(help="Dataset name or id (NAME@N: version N)")],
    output: Annotated[
        Path,
        typer.Option(
            help="CSV or Parquet file (by its suffix); a .zip for images; .json: Label Studio "
            "tasks (with the labeling interface beside it, FILE.config.xml)"
        ),
    ],
    version: Annotated[int | None, typer.Option(help="Version (default: the latest)")] = None,
) -> None:
    """Write a version's data to a file, with its row ids."""
    from engine.services.dataset_versions import export_version, resolve

    settings, db = ready()
    record, found = resolve(db, name)
    number = version if version is not None else found.number
    path = export_version(settings, db, record.id, number, output)
    typer.echo(f"Wrote {record.name}@{number} to {path}")


@app.command("import-labels")
def datasets_import_labels(
    name: Annotated[str, typer.Argument(help="Dataset name or id")],
    file: Annotated[Path, typer.Argument(help="Label Studio's JSON export of the tasks")],
    note: Annotated[str, typer.Option(help="Why (kept with the version)")] = "",
) -> None:
    """Labels done in Label Studio (its JSON export of tasks from `datasets export … .json`)
    as the next version; prints it."""
    import json

    from engine.services.dataset_versions import import_label_studio, resolve

    settings, db = ready()
    record, _ = resolve(db, name)
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"Cannot read {file} as JSON ({exc}). Give Label Studio's JSON export.")
    version, skipped = import_label_studio(settings, db, actor(), record.id, payload, note)
    typer.echo(
        f"{record.name}@{version.number}: version {version.number}, {version.n_rows} rows "
        f"({_diff_text(version.diff)} from version {version.parent_number})"
    )
    for key, count in skipped.items():
        if count:
            typer.echo(f"note: {count} task(s) skipped: {key.replace('_', ' ')}", err=True)
