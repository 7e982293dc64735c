"""Predict with an exported Seedlab model; needs only torch, numpy and pandas (Pillow for images,
tokenizers for a pretrained text encoder).

    python predict.py input.csv                 # predictions as CSV on stdout
    python predict.py input.csv predictions.csv

Tables: a CSV with the feature columns. Text: a CSV with the text column. Images: a CSV with a
column `image` holding file paths (relative to the CSV). Each output row is the input row plus
`prediction` and, for classification, one `p(<class>)` probability column per class.

From Python:  from predict import Model; Model(".").predict(frame)
This file is copied verbatim into every Seedlab predictor bundle; it imports nothing of Seedlab.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|\w+(?:['’\-]\w+)*|[^\w\s]")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
OTHER, MISSING = "__other__", "__missing__"


def _numbers(series: pd.Series) -> np.ndarray:
    """A numeric feature as floats; text that is not a number becomes missing (NaN)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    text = series.astype("string").str.strip()
    grouped = text.str.match(_THOUSANDS, na=False)
    text = text.where(~grouped, text.str.replace(",", "", regex=False))
    return pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()


def _labels(series: pd.Series) -> list[Any]:
    """Category labels as at training: whole numbers lose their '.0'; missing stays None."""
    values = pd.to_numeric(series, errors="coerce")
    present = values.dropna()
    whole = (
        not pd.api.types.is_bool_dtype(series)
        and len(present) == series.notna().sum()
        and len(present) > 0
        and bool(np.all(np.mod(present.to_numpy(dtype="float64"), 1) == 0))
    )
    if whole:
        return [str(int(v)) if pd.notna(v) else None for v in values]
    return [str(v).strip() if pd.notna(v) else None for v in series]


def _dates(series: pd.Series) -> pd.Series:
    """Dates as at training (engine/ml/prep/dates.py parse_dates): naive UTC, NaT if unreadable."""
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.astype("datetime64[ns]")
    text = series.astype("string").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _cyclic(values: np.ndarray, period: float) -> list[np.ndarray]:
    angle = 2 * np.pi * values / period
    return [np.sin(angle), np.cos(angle)]


def encode_date(series: pd.Series, s: dict[str, Any]) -> np.ndarray:
    """Year (standardized), month, weekday, day of year and time of day as sin/cos pairs."""
    values = _dates(series)
    missing = values.isna().to_numpy()
    filled = values.fillna(pd.Timestamp(s["fill"]))
    blocks: list[np.ndarray] = []
    if s["has_date"]:
        year = filled.dt.year.to_numpy(dtype=np.float64)
        blocks.append((year - s["year_mean"]) / s["year_std"])
        blocks += _cyclic(filled.dt.month.to_numpy(dtype=np.float64) - 1, 12)
        blocks += _cyclic(filled.dt.day_of_week.to_numpy(dtype=np.float64), 7)
        blocks += _cyclic(filled.dt.day_of_year.to_numpy(dtype=np.float64) - 1, 365.25)
    if s["has_time"]:
        hours = filled.dt.hour + filled.dt.minute / 60 + filled.dt.second / 3600
        blocks += _cyclic(hours.to_numpy(dtype=np.float64), 24)
    if s["add_missing_indicator"]:
        blocks.append(missing.astype(np.float64))
    return np.stack(blocks, axis=1) if blocks else np.zeros((len(series), 0))


def _words(text: Any) -> list[str]:
    """Tokens as at training (engine/data/tokenizer.py split_words), words and numbers only."""
    text = unicodedata.normalize("NFKC", "" if pd.isna(text) else str(text)).casefold()
    return [w for w in _TOKEN.findall(text) if any(ch.isalnum() for ch in w)]


def encode_words(series: pd.Series, s: dict[str, Any]) -> np.ndarray:
    """A free-text column as TF-IDF over the training words (engine/ml/prep/words.py)."""
    index = {w: i for i, w in enumerate(s["vocab"])}
    counts = np.zeros((len(series), len(s["vocab"])))
    for row, text in enumerate(series):
        for word in _words(text):
            if word in index:
                counts[row, index[word]] += 1
    weighted = np.log1p(counts) * np.asarray(s["idf"], dtype=np.float64)
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    return weighted / np.where(norms > 0, norms, 1.0)


def encode_table(frame: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    dates, words = spec.get("dates", []), spec.get("words", [])
    needed = [s["name"] for s in spec["numeric"] + spec["categorical"] + dates + words]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SystemExit(f"error: the input has no column(s) {missing}; expected {needed}")
    blocks = []
    for s in spec["numeric"]:
        values = _numbers(frame[s["name"]])
        absent = np.isnan(values)
        filled = np.where(absent, s["median"], values)
        if s.get("log"):  # a skewed column, on a signed log scale (engine/ml/prep/tabular.py)
            filled = np.sign(filled) * np.log1p(np.abs(filled))
        blocks.append(((filled - s["mean"]) / s["std"])[:, None])
        if s["add_missing_indicator"]:
            blocks.append(absent[:, None].astype(np.float64))
    for s in spec["categorical"]:
        columns = list(s["categories"]) + [OTHER] * s["has_other"] + [MISSING] * s["has_missing"]
        where = {c: i for i, c in enumerate(columns)}
        onehot = np.zeros((len(frame), len(columns)))
        for row, label in enumerate(_labels(frame[s["name"]])):
            key = MISSING if label is None else (label if label in s["categories"] else OTHER)
            if key == MISSING and not s["has_missing"]:
                key = OTHER
            if key in where:
                onehot[row, where[key]] = 1.0
        blocks.append(onehot)
    for s in dates:
        blocks.append(encode_date(frame[s["name"]], s))
    for s in words:
        blocks.append(encode_words(frame[s["name"]], s))
    return np.hstack(blocks).astype(np.float32) if blocks else np.zeros((len(frame), 0), "f4")


def encode_pretrained_texts(texts: list[Any], spec: dict[str, Any]) -> np.ndarray:
    """A pretrained encoder's own tokenizer, stored in the bundle (needs `tokenizers`)."""
    from tokenizers import Tokenizer  # only pretrained text models need it

    tok = Tokenizer.from_str(spec["tokenizer"])
    tok.enable_truncation(spec["max_length"])
    tok.enable_padding(pad_id=spec["pad_id"], length=spec["max_length"])
    clean = ["" if pd.isna(t) else str(t) for t in texts]
    if not clean:
        return np.zeros((0, spec["max_length"]), dtype=np.int64)
    return np.asarray([e.ids for e in tok.encode_batch(clean)], dtype=np.int64)


def encode_texts(texts: list[Any], spec: dict[str, Any]) -> np.ndarray:
    if spec.get("kind") == "pretrained_text":
        return encode_pretrained_texts(texts, spec)
    tok = spec["tokenizer"]
    index = {w: i for i, w in enumerate(tok["vocab"])}
    out = np.full((len(texts), tok["max_length"]), tok["pad_id"], dtype=np.int64)
    for row, text in enumerate(texts):
        text = unicodedata.normalize("NFKC", "" if pd.isna(text) else str(text))
        if tok["lowercase"]:
            text = text.casefold()
        ids = [index.get(w, tok["unk_id"]) for w in _TOKEN.findall(text)[: tok["max_length"]]]
        out[row, : len(ids)] = ids
    return out


def encode_images(paths: list[str], spec: dict[str, Any], folder: Path) -> np.ndarray:
    from PIL import Image, ImageOps  # only image models need Pillow

    size, channels = spec["image_size"], spec["channels"]
    mean = np.array(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.array(spec["std"], dtype=np.float32)[:, None, None]
    out = []
    for path in paths:
        with Image.open(folder / path) as opened:
            image = ImageOps.exif_transpose(opened)
            if image.mode in ("RGBA", "LA", "PA") or (
                image.mode == "P" and "transparency" in image.info
            ):
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba)
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            array = np.array(image, dtype=np.uint8).reshape(size, size, channels)
        x = array.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
        out.append((x - mean) / std)
    return np.stack(out).astype(np.float32) if out else np.zeros((0, channels, size, size), "f4")


class Model:
    def __init__(self, folder: Path | str = HERE) -> None:
        self.folder = Path(folder)
        self.spec = json.loads((self.folder / "preprocessing.json").read_text(encoding="utf-8"))
        model_file = str(self.folder / self.spec["model_file"])
        if self.spec["model_format"] == "pt2":
            self.model = torch.export.load(model_file).module()
        else:
            self.model = torch.jit.load(model_file)

    def encode(self, frame: pd.DataFrame, folder: Path | None = None) -> torch.Tensor:
        kind, pre = self.spec["kind"], self.spec["preprocessor"]
        if kind == "tabular":
            return torch.from_numpy(encode_table(frame, pre))
        column = pre["text_column"] if kind == "text" else "image"
        if column not in frame.columns:
            raise SystemExit(f"error: the input needs a column {column!r}")
        values = frame[column].tolist()
        if kind == "text":
            return torch.from_numpy(encode_texts(values, pre))
        return torch.from_numpy(encode_images(values, pre, folder or Path.cwd()))

    @torch.no_grad()
    def predict(self, frame: pd.DataFrame, folder: Path | None = None) -> pd.DataFrame:
        x = self.encode(frame, folder)
        parts = [self.model(x[i : i + 512]) for i in range(0, len(x), 512)]
        out = torch.cat(parts).float() if parts else torch.zeros((0, 1))
        if self.spec["task"] == "classification":
            classes = self.spec["classes"]
            probs = torch.softmax(out, dim=1).numpy().astype(np.float64)
            result = pd.DataFrame(probs, columns=[f"p({c})" for c in classes])
            result.insert(0, "prediction", [classes[i] for i in probs.argmax(axis=1)])
        else:
            target = self.spec["target"]
            values = out.view(-1).numpy().astype(np.float64) * target["std"] + target["mean"]
            result = pd.DataFrame({"prediction": values})
        result.index = frame.index
        clashing = [c for c in result.columns if c in frame.columns]
        renamed = result.rename(columns={c: f"{c}_predicted" for c in clashing})
        return pd.concat([frame, renamed], axis=1)


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    source = Path(argv[0])
    frame = pd.read_csv(source)
    result = Model().predict(frame, folder=source.resolve().parent)
    if len(argv) == 2:
        result.to_csv(argv[1], index=False)
    else:
        result.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
