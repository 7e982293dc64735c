"""A run's compressed variants and how they compare with the original: runs/<id>/variants/.

Each variant's model file lives in that folder (a distilled student is its own run, with its own
folder); `variants.json` holds the comparison: file size, CPU latency at batch 1 and 64, the
test metric and its change against the original. A JSON file rather than table rows, because
these measurements have no place in the artifacts table (path, size, digest), and a JSON written
atomically beside the files never disagrees with them. The files are also registered as
artifacts, so the Artifacts tab lists them for download.

Reading and formatting only: no training here, so the dashboard may import it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from engine.core.atomic import write_json_atomic
from engine.core.settings import Settings

METHODS = ("quantize", "prune", "distill")


def variants_dir(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "variants"


def record_path(settings: Settings, run_id: int) -> Path:
    return variants_dir(settings, run_id) / "variants.json"


def read_variants(settings: Settings, run_id: int) -> dict[str, Any]:
    """{"original": {...} | None, "variants": [...]}: empty when nothing was compressed yet."""
    try:
        data = json.loads(record_path(settings, run_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    return {"original": data.get("original"), "variants": list(data.get("variants") or [])}


def write_variants(settings: Settings, run_id: int, record: dict[str, Any]) -> None:
    write_json_atomic(record_path(settings, run_id), record)


def add_variant(settings: Settings, run_id: int, original: dict[str, Any], row: dict) -> None:
    """Store one variant (a same-named one is replaced: compressing again re-measures)."""
    record = read_variants(settings, run_id)
    record["original"] = original
    record["variants"] = [v for v in record["variants"] if v.get("name") != row["name"]]
    record["variants"].append({**row, "created_at": time.time()})
    write_variants(settings, run_id, record)


def comparison_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row for the original and one per variant, in the order they were made."""
    rows = []
    original = record.get("original")
    if original:
        rows.append({"variant": "original", "method": "—", **_measures(original, None)})
    base = (original or {}).get("value")
    for v in record.get("variants") or []:
        rows.append(
            {"variant": v.get("name", "?"), "method": v.get("method", "?"), **_measures(v, base)}
        )
    columns = [
        "variant",
        "method",
        "status",
        "size_kb",
        "latency_b1_ms",
        "latency_b64_ms",
        "metric",
        "value",
        "change",
        "details",
    ]
    return pd.DataFrame(rows, columns=columns)


def _measures(entry: dict[str, Any], base: float | None) -> dict[str, Any]:
    value = entry.get("value")
    size = entry.get("size_bytes")
    return {
        "status": entry.get("status", "ready"),
        "size_kb": None if size is None else round(size / 1024, 1),
        "latency_b1_ms": entry.get("latency_b1_ms"),
        "latency_b64_ms": entry.get("latency_b64_ms"),
        "metric": entry.get("metric"),
        "value": value,
        "change": None if value is None or base is None else value - base,
        "details": entry.get("details", ""),
    }


def format_table(table: pd.DataFrame) -> str:
    """The comparison as aligned text, for the CLI."""
    shown = table.copy()
    for col, fmt in (
        ("size_kb", "{:,.1f}"),
        ("latency_b1_ms", "{:.3f}"),
        ("latency_b64_ms", "{:.3f}"),
        ("value", "{:.4f}"),
        ("change", "{:+.4f}"),
    ):
        shown[col] = shown[col].map(lambda v, f=fmt: "" if v is None or pd.isna(v) else f.format(v))
    return shown.fillna("").to_string(index=False)
