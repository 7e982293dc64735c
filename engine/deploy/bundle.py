"""A self-contained predictor bundle: a ZIP that runs a run's model without Seedlab installed.

model.pt2 (torch.export) or model.torchscript.pt (recurrent text models, which torch.export
    cannot trace)
preprocessing.json   how raw inputs become the model's tensor (fitted on the training rows)
classes.json         the class names in output order (classification)
predict.py           engine/deploy/bundle_predict.py, verbatim: torch, numpy, pandas only
example.csv          a few test-split rows (images: example images beside it)
README.txt           how to run it
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from engine.core.atomic import atomic_path
from engine.core.errors import DatasetError
from engine.data.image_store import described_image_bytes
from engine.deploy.model_files import NOT_TRACEABLE_BY_EXPORT, write_pt2, write_torchscript
from engine.ml.predictor import Predictor
from engine.ml.prepared import PreparedData

PREDICT_SCRIPT = Path(__file__).with_name("bundle_predict.py")
EXAMPLE_ROWS = 5

README = """Seedlab predictor bundle: run #{run} ({family}, {kind} {task}).

    pip install torch numpy pandas{pillow}
    python predict.py example.csv             # predictions as CSV on stdout
    python predict.py your.csv predictions.csv

{input_help}
Outputs: the input columns, then `prediction`{proba}.
From Python: `from predict import Model; Model(".").predict(pandas_frame)`.
"""


def _spec(predictor: Predictor, model_file: str, model_format: str) -> dict[str, Any]:
    return {
        "format": "seedlab-bundle-v1",
        "kind": predictor.kind,
        "task": predictor.task,
        "model_family": predictor.model_family,
        "model_file": model_file,
        "model_format": model_format,
        "input": predictor.spec.to_dict(),
        "classes": predictor.classes,
        "target": predictor.target.to_dict(),
        "target_column": predictor.target_column,
        "input_columns": predictor.input_columns,
        "preprocessor": predictor.payload["preprocessor"],
    }


def _examples(predictor: Predictor, data: PreparedData, folder: Path, home: Path) -> str:
    """Write example.csv from the first test rows; returns a sentence about the input."""
    n = min(EXAMPLE_ROWS, len(data.x_test))
    rows = data.describe_test(range(n))
    if predictor.kind == "image":
        (folder / "examples").mkdir()
        names = []
        for i, row in enumerate(rows):
            name = f"examples/{i}{Path(row['image']).suffix.lower()}"
            image = described_image_bytes(row, home)
            if image is None:
                raise DatasetError(
                    f"Test image {row.get('row_id', row['image'])!r} of the run's dataset "
                    "cannot be read. Upload the dataset again, then export."
                )
            (folder / name).write_bytes(image)
            names.append(name)
        pd.DataFrame({"image": names}).to_csv(folder / "example.csv", index=False)
        return "Input: a CSV with a column `image` of image file paths (relative to the CSV)."
    if predictor.kind == "text":
        column = predictor.payload["preprocessor"]["text_column"]
        pd.DataFrame({column: [row["text"] for row in rows]}).to_csv(
            folder / "example.csv", index=False
        )
        return f"Input: a CSV with a text column `{column}`."
    pd.DataFrame(rows).to_csv(folder / "example.csv", index=False)
    return "Input: a CSV with the columns " + ", ".join(predictor.input_columns) + "."


def _extra_packages(predictor: Predictor) -> str:
    """A pretrained encoder's tokenizer runs on the `tokenizers` package."""
    return (
        " tokenizers" if predictor.payload["preprocessor"].get("kind") == "pretrained_text" else ""
    )


def write_bundle(
    predictor: Predictor, data: PreparedData, zip_path: Path, home: Path | None = None
) -> Path:
    """Build the bundle in a temp folder, then write the ZIP (atomically) to `zip_path`."""
    run_id = int(zip_path.stem.split("-")[1]) if zip_path.stem.startswith("run-") else 0
    with tempfile.TemporaryDirectory(prefix="seedlab-bundle-") as tmp:
        folder = Path(tmp) / zip_path.stem
        folder.mkdir()
        if predictor.model_family in NOT_TRACEABLE_BY_EXPORT:
            model_file, model_format = "model.torchscript.pt", "torchscript"
            write_torchscript(predictor, folder / model_file)
        else:
            model_file, model_format = "model.pt2", "pt2"
            write_pt2(predictor, folder / model_file)
        spec = _spec(predictor, model_file, model_format)
        (folder / "preprocessing.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
        (folder / "classes.json").write_text(json.dumps(predictor.classes), encoding="utf-8")
        shutil.copyfile(PREDICT_SCRIPT, folder / "predict.py")
        # The report names a dataset's images relative to SEEDLAB_HOME.
        input_help = _examples(predictor, data, folder, home or Path.cwd())
        (folder / "README.txt").write_text(
            README.format(
                run=run_id,
                family=predictor.model_family,
                kind=predictor.kind,
                task=predictor.task,
                pillow=" pillow" if predictor.kind == "image" else _extra_packages(predictor),
                input_help=input_help,
                proba=", and p(<class>) per class" if predictor.task == "classification" else "",
            ),
            encoding="utf-8",
        )
        with (
            atomic_path(zip_path) as partial,
            zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive,
        ):
            for path in sorted(folder.rglob("*")):
                archive.write(path, path.relative_to(folder.parent))
    return zip_path
