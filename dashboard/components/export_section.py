"""The Run page's Export tab: download the model as TorchScript, ONNX, .pt2 or a predictor
bundle, and make smaller variants (int8, pruned, distilled) compared with the original.

The work itself is a job for the engine (engine/services/jobs.py queues it, the worker runs it in
a child process, as `seedlab runs export|compress|variants` would in-process): exporters and the
pruning fine-tune never run inside the web process, which never waits on a child process either.
This module queues the jobs, shows them (components/job_status.py), and reads the JSON records
the work writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from dashboard.components import job_status
from db import runs as run_store
from db.records import JobRecord, RunRecord
from engine.core.settings import Settings
from engine.deploy.variants import comparison_table, read_variants
from engine.services import jobs
from engine.services.permissions import Permission

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
METHOD_LABELS = {
    "quantize": "Dynamic int8 quantization",
    "prune": "Magnitude pruning + fine-tune",
    "distill": "Distill into a smaller student run",
}


def _export_label(job: JobRecord) -> str:
    return f"Export as {FORMATS.get(job.params.get('format', ''), ('?',))[0]}"


def _compress_label(job: JobRecord) -> str:
    method = job.params.get("method", "")
    return METHOD_LABELS.get(method, "Measuring the finished students")


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


def _export(settings: Settings, db: Engine, run: RunRecord) -> None:
    st.markdown("**Export**")
    cols = st.columns(len(FORMATS))
    for col, (fmt, (label, help_text)) in zip(cols, FORMATS.items(), strict=True):
        if col.button(
            f"Build {label}",
            key=f"export_{fmt}",
            help=help_text,
            disabled=not auth.can(Permission.EXPORT),
        ):
            with data.shown_errors("queueing the export"):
                actor = auth.require(Permission.EXPORT, what=f"run {run.id}")
                jobs.request_export(settings, db, actor, run.id, fmt)
    job_status.panel(db, run.id, "export", _export_label)
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


def _compress_form(settings: Settings, db: Engine, run: RunRecord) -> None:
    with st.form("compress_form"):
        method = st.selectbox(
            "Method",
            ["quantize", "prune", "distill"],
            format_func=METHOD_LABELS.get,
        )
        left, right = st.columns(2)
        sparsity = left.slider("Pruning: target sparsity", 0.1, 0.95, 0.5, 0.05)
        epochs = right.number_input("Pruning: fine-tune epochs", 0, 100, 2)
        temperature = left.number_input("Distillation: temperature", 0.5, 20.0, 2.0, 0.5)
        alpha = right.slider("Distillation: weight of the teacher", 0.0, 1.0, 0.5, 0.05)
        submitted = st.form_submit_button(
            "Compress", icon=":material/compress:", disabled=not auth.can(Permission.EXPORT)
        )
    if submitted:
        with data.shown_errors("queueing the compression"):
            # A distilled student is a new run: launching it needs that right too.
            actor = auth.require(Permission.LAUNCH if method == "distill" else Permission.EXPORT)
            jobs.request_compression(
                settings,
                db,
                actor,
                run.id,
                method,
                sparsity=sparsity,
                epochs=int(epochs),
                overrides={"distill_temperature": temperature, "distill_alpha": alpha},
            )
    job_status.panel(db, run.id, "compress", _compress_label)


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
            with data.shown_errors("queueing the measurement"):
                actor = auth.require(Permission.EXPORT, what=f"run {run.id}")
                jobs.request_compression(settings, db, actor, run.id, "measure")
                st.rerun()  # the job panel above shows it
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
    _export(settings, db, run)
    st.divider()
    st.markdown("**Compression**")
    _compress_form(settings, db, run)
    _variants(settings, db, run)
