"""Distillation as a compression method: queue a student run that learns from a completed run's
outputs (the student trains like any run; engine/deploy/compress.py measures it once it is done).
A launch, so it lives with the other writes that queue runs."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from engine.core.settings import Settings
from engine.deploy.finished_run import completed_run_record, load_model
from engine.deploy.variants import read_variants, write_variants
from engine.ml.distill import student_config
from engine.services.launch import submit_run


def distill_run(
    settings: Settings, db: Engine, run_id: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Queue a student run learning from run `run_id`; it is measured once it completes."""
    teacher = completed_run_record(db, run_id)
    load_model(settings, run_id)  # fails now, not in the worker, when the model is unreadable
    config = student_config(teacher.config, run_id, dict(overrides or {}))
    student_id = submit_run(
        db,
        teacher.dataset_id,
        config,
        name=f"{teacher.name} · student",
        parent_run_id=run_id,
        project_id=teacher.project_id,
        tags=["distilled"],
        dataset_version=teacher.dataset_version or 1,  # the student learns on the same data
    )
    row = {
        "name": f"student #{student_id}",
        "method": "distill",
        "run_id": student_id,
        "params": {
            "temperature": config.distill_temperature,
            "alpha": config.distill_alpha,
            "hidden_sizes": config.hidden_sizes,
        },
        "status": "queued",
        "details": f"run #{student_id} learns from this run's outputs; measured when it completes",
    }
    record = read_variants(settings, run_id)
    record["variants"] = [v for v in record["variants"] if v.get("name") != row["name"]]
    record["variants"].append({**row, "created_at": time.time()})
    write_variants(settings, run_id, record)
    return row
