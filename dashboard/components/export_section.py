"""The Run page's Export tab: download the model as TorchScript, ONNX, .pt2 or a predictor
bundle, and make smaller variants (int8, pruned, distilled) compared with the original.

The work itself runs as `seedlab runs export|compress|variants` in a subprocess: exporters and
the pruning fine-tune never run inside the web process, and the page does exactly what the CLI
does. This module only reads the JSON records those commands write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from db import runs as run_store
from db.records import RunRecord
from engine.core.settings import Settings
from engine.deploy.variants import comparison_table, read_variants
from engine.services.permissions import Permission

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 600
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
FORMATS = {
    "onnx": ("ONNX", "model.onnx, checked with onnxruntime against PyTorch on the test split"),
    "torchscript": ("TorchScript", "model.torchscript.pt for torch.jit.load (deprecated)"),
    "pt2": (".pt2", "torch.export's format: torch.export.load(path).module()"),
    "bundle": (
        "Predictor bundle",
        "a ZIP with the model, preprocessing.json, classes and predict.py: runs with "
        "torch/numpy/pandas, no Seedlab",
    ),
}
MIME = {".zip": "application/zip"}


def _cli(settings: Settings, *args: str) -> tuple[bool, str]:
    """Run one `seedlab` command; (ok, its output or its one-line error)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli.main", *args],
            cwd=PROJECT_ROOT,
            env=settings.child_env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, f"It took longer than {CLI_TIMEOUT_S // 60} minutes and was stopped."
    if done.returncode == 0:
        return True, done.stdout
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    return False, (lines[-1].removeprefix("error: ") if lines else done.stderr[-500:])


def _read_exports(settings: Settings, run_id: int) -> dict[str, dict[str, Any]]:
    import json

    path = settings.run_dir(run_id) / "exports" / "exports.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _download(path: Path, label: str, key: str) -> None:
    if not path.is_file():
        st.caption(f"{path.name}: file missing — build it again.")
    elif path.stat().st_size > MAX_DOWNLOAD_BYTES:
        st.caption(f"{path.name} is too large to download here; copy it from {path.parent}.")
    else:
        st.download_button(
            label,
            data=path.read_bytes,
            file_name=path.name,
            mime=MIME.get(path.suffix, "application/octet-stream"),
            key=key,
            on_click="ignore",
            icon=":material/download:",
        )


def _export(settings: Settings, run: RunRecord) -> None:
    st.markdown("**Export**")
    cols = st.columns(len(FORMATS))
    for col, (fmt, (label, help_text)) in zip(cols, FORMATS.items(), strict=True):
        if col.button(
            f"Build {label}",
            key=f"export_{fmt}",
            help=help_text,
            disabled=not auth.can(Permission.EXPORT),
        ):
            auth.require(Permission.EXPORT, what=f"run {run.id}")
            auth.audit("export", f"run {run.id}", fmt)
            with st.spinner(f"Exporting as {label}…"):
                ok, text = _cli(settings, "runs", "export", str(run.id), "--format", fmt)
            if ok:
                st.success(text.strip(), icon=":material/check_circle:")
            else:
                st.error(text, icon=":material/error:")
    exports = _read_exports(settings, run.id)
    for fmt, entry in exports.items():
        label = FORMATS.get(fmt, (fmt, ""))[0]
        path = Path(entry.get("path", ""))
        name_col, check_col, action_col = st.columns([2, 4, 2], vertical_alignment="center")
        name_col.text(f"{label}: {path.name}")
        if entry.get("max_abs_diff") is not None:
            check_col.caption(
                f"onnxruntime vs PyTorch on {entry.get('checked_rows', 0):,} test rows: "
                f"max abs difference {entry['max_abs_diff']:.2e}"
            )
        with action_col:
            _download(path, "Download", f"export_download_{fmt}")


def _compress_form(settings: Settings, run: RunRecord) -> None:
    with st.form("compress_form"):
        method = st.selectbox(
            "Method",
            ["quantize", "prune", "distill"],
            format_func={
                "quantize": "Dynamic int8 quantization",
                "prune": "Magnitude pruning + fine-tune",
                "distill": "Distill into a smaller student run",
            }.get,
        )
        left, right = st.columns(2)
        sparsity = left.slider("Pruning: target sparsity", 0.1, 0.95, 0.5, 0.05)
        epochs = right.number_input("Pruning: fine-tune epochs", 0, 100, 2)
        temperature = left.number_input("Distillation: temperature", 0.5, 20.0, 2.0, 0.5)
        alpha = right.slider("Distillation: weight of the teacher", 0.0, 1.0, 0.5, 0.05)
        submitted = st.form_submit_button(
            "Compress", icon=":material/compress:", disabled=not auth.can(Permission.EXPORT)
        )
    if not submitted:
        return
    # A distilled student is a new run: launching it needs that right too.
    auth.require(Permission.LAUNCH if method == "distill" else Permission.EXPORT)
    auth.audit("compress", f"run {run.id}", method)
    args = ["runs", "compress", str(run.id), "--method", method]
    if method == "prune":
        args += ["--sparsity", str(sparsity), "--epochs", str(int(epochs))]
    if method == "distill":
        args += ["--set", f"distill_temperature={temperature}", "--set", f"distill_alpha={alpha}"]
    with st.spinner("Compressing and measuring…"):
        ok, text = _cli(settings, *args)
    if not ok:
        st.error(text, icon=":material/error:")
    elif method == "distill":
        st.success(text.splitlines()[0], icon=":material/school:")
    else:
        st.success("Done: the variant is in the table below.", icon=":material/check_circle:")


def _variants(settings: Settings, db: Engine, run: RunRecord) -> None:
    record = read_variants(settings, run.id)
    if not record["variants"]:
        st.info(
            "No variants yet: compress the model above to compare size, speed and test metric.",
            icon=":material/compress:",
        )
        return
    pending = [
        v
        for v in record["variants"]
        if v.get("method") == "distill" and v.get("status") not in ("ready", "failed", "cancelled")
    ]
    for entry in pending:  # show the student's live status, not the one stored when queued
        student = run_store.get_run(db, int(entry["run_id"]))
        entry["status"] = student.status if student else "deleted"
    if any(v["status"] in ("completed", "failed", "cancelled", "deleted") for v in pending):
        if st.button("Measure finished students", icon=":material/speed:"):
            with st.spinner("Measuring…"):
                ok, text = _cli(settings, "runs", "variants", str(run.id))
            if not ok:
                st.error(text, icon=":material/error:")
            st.rerun()
    st.dataframe(
        comparison_table(record),
        hide_index=True,
        column_config={
            "size_kb": st.column_config.NumberColumn("size (KB)", format="%.1f"),
            "latency_b1_ms": st.column_config.NumberColumn("CPU ms, batch 1", format="%.3f"),
            "latency_b64_ms": st.column_config.NumberColumn("CPU ms, batch 64", format="%.3f"),
            "value": st.column_config.NumberColumn("test value", format="%.4f"),
            "change": st.column_config.NumberColumn("change vs original", format="%+.4f"),
        },
    )
    st.caption("Latency: median CPU forward pass in this engine's process, after a warm-up.")
    for i, entry in enumerate(record["variants"]):
        if entry.get("file"):
            _download(
                settings.run_dir(run.id) / entry["file"],
                f"Download {entry['name']}",
                f"variant_download_{i}",
            )
        elif entry.get("run_id"):
            st.page_link(
                data.RUN_PAGE,
                label=f"Open student run #{entry['run_id']}",
                query_params={"run": str(entry["run_id"])},
                icon=":material/school:",
            )


def show(settings: Settings, db: Engine, run: RunRecord) -> None:
    """The whole tab; a run that has not completed gets a sentence instead."""
    if run.status != "completed":
        st.info(
            "Export and compression work on a completed run's final model.",
            icon=":material/ios_share:",
        )
        return
    _export(settings, run)
    st.divider()
    st.markdown("**Compression**")
    _compress_form(settings, run)
    _variants(settings, db, run)
