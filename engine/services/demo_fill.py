"""Synthetic runs for load testing: `seedlab demo fill --runs 10000 --steps 100`.

The runs look like a hyper-parameter sweep on the demo datasets: real, validated RunConfigs
with varied learning rates, widths, dropout and optimizers, and curves whose final quality
depends on those params (so sorting, filtering and parallel coordinates show a pattern).
Nothing trains; rows are written in bulk, one transaction per chunk of runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy import Engine

from db import datasets as dataset_store
from db import projects as project_store
from db.session import utcnow
from db.writes import bulk
from db.writes import digests as digest_writes
from db.writes import projects as project_writes
from engine.core.config import RunConfig
from engine.core.settings import Settings
from engine.services import audit
from engine.services.permissions import Actor, Permission, check

CURVE_KEYS = ("train_loss", "val_loss", "val_accuracy", "val_f1_macro", "lr")
TAGS = ("baseline", "sweep-a", "sweep-b", "ablation", "keep")
CHUNK_RUNS = 1000
CLASSIFICATION_DATASETS = ("iris", "wine", "breast_cancer")


@dataclass(frozen=True)
class FillResult:
    project_id: int
    project_name: str
    runs: int
    points: int
    seconds: float


def _project_id(db: Engine, name: str) -> int:
    existing = project_store.get_project_by_name(db, name)
    return existing.id if existing else project_writes.create_project(db, name).id


def _dataset_ids(settings: Settings, db: Engine) -> list[int]:
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db)
    found = [dataset_store.get_dataset_by_name(db, n) for n in CLASSIFICATION_DATASETS]
    return [d.id for d in found if d is not None]


def _chunk(
    rng: np.random.Generator, n: int, steps: int, first_index: int, dataset_ids: list[int]
) -> tuple[list[dict], list[list[str]], Iterator[list[tuple[str, int, float, float]]]]:
    lr = 10 ** rng.uniform(-4.5, -1, n)
    width = rng.choice([16, 32, 64, 128, 256], n)
    depth = rng.choice([1, 2, 3], n)
    dropout = rng.choice([0.0, 0.1, 0.2, 0.3, 0.5], n)
    optimizer = rng.choice(["adamw", "adam", "sgd"], n)
    batch_size = rng.choice([16, 32, 64, 128], n)
    dataset = rng.choice(dataset_ids, n)
    status = rng.choice(["completed", "failed", "cancelled"], n, p=[0.9, 0.06, 0.04])
    # Quality peaks near lr = 3e-3 and grows with width; noise keeps ties rare.
    quality = (
        0.97
        - 0.08 * (np.log10(lr) + 2.5) ** 2
        + 0.01 * np.log2(width / 16)
        - 0.04 * dropout
        - 0.03 * (optimizer == "sgd")
        + rng.normal(0, 0.01, n)
    ).clip(0.3, 0.995)
    tau = steps * rng.uniform(0.1, 0.4, n)
    t = np.arange(1, steps + 1)
    decay = np.exp(-t[None, :] / tau[:, None])
    noise = rng.normal(0, 0.01, (n, steps))
    curves = {
        "train_loss": (1.2 * decay + (1 - quality[:, None]) * 0.8 + noise).clip(1e-4),
        "val_loss": (1.3 * decay + (1 - quality[:, None]) + noise * 1.5).clip(1e-4),
        "val_accuracy": (quality[:, None] * (1 - 0.6 * decay) + noise).clip(0, 1),
        "val_f1_macro": (quality[:, None] * (1 - 0.65 * decay) - 0.01 + noise).clip(0, 1),
        "lr": lr[:, None] * 0.5 * (1 + np.cos(np.pi * t[None, :] / steps)),
    }
    now = utcnow()
    run_rows, tags = [], []
    for i in range(n):
        sizes = [int(width[i])] * int(depth[i])
        config = RunConfig(
            learning_rate=float(lr[i]),
            hidden_sizes=sizes,
            dropout=float(dropout[i]),
            optimizer=str(optimizer[i]),
            batch_size=int(batch_size[i]),
            epochs=steps,
            seed=first_index + i,
        )
        index = first_index + i
        created = now - timedelta(minutes=10 * (100_000 - index))
        duration = timedelta(seconds=float(steps * rng.uniform(0.2, 2.0)))
        run_rows.append(
            {
                "name": f"synthetic-{index:05d}-{optimizer[i]}-{'x'.join(map(str, sizes))}"
                f"-lr{lr[i]:.1e}",
                "dataset_id": int(dataset[i]),
                "config": config.model_dump(mode="json"),
                "status": str(status[i]),
                "cancel_requested": False,
                "device": "cpu",
                "created_at": created,
                "started_at": created,
                "heartbeat_at": created + duration,
                "finished_at": created + duration,
                "error": "synthetic failure" if status[i] == "failed" else None,
                "notes": "",
                "project_id": 0,  # set by the caller
                "archived": False,
                "attempts": 0,
            }
        )
        tags.append([str(x) for x in rng.choice(TAGS, int(rng.integers(0, 3)), replace=False)])
    start_wall = time.time() - 3600

    def points() -> Iterator[list[tuple[str, int, float, float]]]:
        walls = start_wall + t.astype(float) * 0.5
        for i in range(n):
            out: list[tuple[str, int, float, float]] = []
            for key, values in curves.items():
                out += zip(
                    [key] * steps, t.tolist(), values[i].tolist(), walls.tolist(), strict=True
                )
            yield out

    return run_rows, tags, points()


def fill_project(
    settings: Settings,
    db: Engine,
    *,
    project: str = "Default",
    runs: int = 1000,
    steps: int = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> FillResult:
    """Write `runs` synthetic finished runs with len(CURVE_KEYS) curves of `steps` points."""
    if runs < 1 or steps < 1:
        raise ValueError(f"runs and steps must be at least 1; got runs={runs}, steps={steps}")
    started = time.perf_counter()
    project_id = _project_id(db, project)
    dataset_ids = _dataset_ids(settings, db)
    rng = np.random.default_rng(seed)
    done = 0
    while done < runs:
        n = min(CHUNK_RUNS, runs - done)
        rows, tags, points = _chunk(rng, n, steps, done, dataset_ids)
        for row in rows:
            row["project_id"] = project_id
        ids = bulk.insert_finished_runs(db, rows, tags, points)
        # Finished runs: their curve digests as a runner stores them at a run's end.
        digest_writes.write_digests(db, ids)
        done += n
        if progress:
            progress(done, runs)
    return FillResult(
        project_id, project, runs, runs * steps * len(CURVE_KEYS), time.perf_counter() - started
    )


def fill_project_as(
    settings: Settings,
    db: Engine,
    actor: Actor,
    *,
    project: str = "Default",
    runs: int = 1000,
    steps: int = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> FillResult:
    """`fill_project` as `actor` (`seedlab demo fill`): it queues nothing, but it adds runs and
    may create the project, so it needs both permissions, and leaves one audit entry."""
    check(actor, Permission.LAUNCH)
    check(actor, Permission.CREATE_PROJECT)
    result = fill_project(
        settings, db, project=project, runs=runs, steps=steps, seed=seed, progress=progress
    )
    audit.record(
        db,
        actor,
        "demo_fill",
        f"project {result.project_id} {result.project_name}",
        f"{result.runs} runs, {result.points} points",
    )
    return result
