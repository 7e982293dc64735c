"""`seedlab predict RUN_ID`: a completed run's model on a CSV, some texts or some images.

The same predictor and explanations as the Playground page (engine.ml.predictor, engine.ml.explain):

    seedlab predict 7 --input rows.csv --output rows-predicted.csv
    seedlab predict 9 --text "Where is my parcel?" --explain
    seedlab predict 12 --image cat.png --image dog.jpg
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from db import runs as run_store
from engine.cli.common import fail, ready
from engine.core.csv_safe import to_safe_csv
from engine.core.run_files import checkpoint_path
from engine.data.tables import read_table

if TYPE_CHECKING:
    # torch and scikit-learn come with these: imported where used, so every other `seedlab`
    # command (this module is registered with all of them) starts without them.
    from engine.ml.predictor import Predictor

# Explanations run Integrated Gradients per row: fine for a handful, slow for a whole table.
MAX_EXPLAINED_ROWS = 100


def load_run_predictor(run_id: int) -> Predictor:
    """The predictor of a completed run, or a one-line error naming what to do."""
    from engine.ml.predictor import Predictor, PredictorError

    settings, db = ready()
    run = run_store.get_run(db, run_id)
    if run is None:
        fail(f"there is no run #{run_id}; `seedlab runs list` shows the runs")
    if run.status != "completed":
        fail(f"run #{run_id} is {run.status}; predict takes a completed run")
    try:
        return Predictor.load(checkpoint_path(settings, run_id))
    except PredictorError as exc:
        fail(str(exc))


def _inputs(
    predictor: Predictor, input_file: Path | None, texts: list[str], images: list[Path]
) -> tuple[pd.DataFrame, object]:
    """(the frame the output starts from, what the predictor takes)."""
    given = [
        name for name, v in (("--input", input_file), ("--text", texts), ("--image", images)) if v
    ]
    if len(given) != 1:
        fail("give exactly one of --input FILE, --text TEXT (repeatable), --image FILE")
    if input_file is not None:
        try:
            frame = read_table(input_file.read_bytes(), input_file.name)
        except OSError as exc:
            fail(f"cannot read {input_file}: {exc.strerror or exc}")
        return frame, frame
    if texts:
        if predictor.kind != "text":
            fail(f"run takes {predictor.kind} input, not text; use --input or --image")
        empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
        if empty:
            fail(f"--text number {empty[0]} is empty; give a sentence for the model to read")
        return pd.DataFrame({"text": texts}), list(texts)
    if predictor.kind != "image":
        fail(f"run takes {predictor.kind} input, not images; use --input or --text")
    from engine.ml.image_input import read_image_file

    return pd.DataFrame({"image": [str(p) for p in images]}), [read_image_file(p) for p in images]


def _explain_one(predictor: Predictor, row: pd.DataFrame, text: str | None) -> dict:
    from engine.ml import explain
    from engine.ml.predictor import PredictorError

    try:
        if text is not None:
            e = explain.explain_text(predictor, text)
            scores = zip(e.tokens, e.scores, strict=True)
            return {"explained": e.target, "tokens": [{"token": t, "score": s} for t, s in scores]}
        e = explain.explain_row(predictor, row)
    except PredictorError as exc:  # one bad row (an empty text) does not stop the others
        return {"explanation_error": str(exc)}
    assert e.contributions is not None
    contributions = zip(e.contributions["feature"], e.contributions["contribution"], strict=True)
    return {"explained": e.target, "contributions": dict(contributions)}


def _explanations(predictor: Predictor, frame: pd.DataFrame, inputs: object) -> list[dict]:
    if predictor.kind == "image":
        fail("--explain for images draws a saliency map: use the Playground page")
    if len(frame) > MAX_EXPLAINED_ROWS:
        fail(f"--explain takes at most {MAX_EXPLAINED_ROWS} rows; predict more without it")
    texts: list[str | None] = [None] * len(frame)
    if predictor.kind == "text":
        if isinstance(inputs, list):
            texts = list(inputs)
        else:
            column = predictor.preprocessor.text_column  # type: ignore[union-attr]
            texts = frame[column].fillna("").astype(str).tolist()
    return [_explain_one(predictor, frame.iloc[[i]], texts[i]) for i in range(len(frame))]


# Unnamed: `seedlab predict` is a top-level command (engine/cli/main.py).
app = typer.Typer()


@app.command("predict")
def predict_command(
    run_id: Annotated[int, typer.Argument(help="A completed run's id.")],
    input_file: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="CSV, TSV or Parquet table with the model's columns."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the CSV with predictions here (else stdout)."),
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="A text to predict; repeatable.")
    ] = None,
    image: Annotated[
        list[Path] | None, typer.Option("--image", help="An image file to predict; repeatable.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Also print why, as JSON lines: feature contributions (tables) or token "
            f"scores (text); up to {MAX_EXPLAINED_ROWS} rows.",
        ),
    ] = False,
) -> None:
    """Predict with a completed run's model: a table to a CSV with prediction columns, or texts
    or images to a small table (class probabilities for classification)."""
    from engine.ml.predictor import PredictorError, predict_frame

    predictor = load_run_predictor(run_id)
    frame, inputs = _inputs(predictor, input_file, text or [], image or [])
    try:
        if input_file is not None:
            result = predict_frame(predictor, frame)
        else:
            predicted = predictor.predict(inputs)
            predicted.index = frame.index
            result = pd.concat([frame, predicted], axis=1)
        explained = _explanations(predictor, frame, inputs) if explain else []
    except PredictorError as exc:
        fail(str(exc))
    if output is not None:
        try:
            # A file is for spreadsheets: formula-like cells are escaped; stdout stays raw for
            # scripts.
            Path(output).write_text(to_safe_csv(result, index=False), encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
        typer.echo(f"Wrote {len(result):,} prediction(s) to {output}", err=True)
    elif not explain:
        result.to_csv(sys.stdout, index=False)
    if not explain:
        return
    # With --explain: one JSON line per input, its predictions and why (stdout stays parseable).
    columns = list(result.columns[len(frame.columns) :])
    for (_, row), item in zip(result.iterrows(), explained, strict=True):
        predicted = {c: _plain(row[c]) for c in columns}
        typer.echo(json.dumps({**predicted, **item}))


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value
