"""What the engine is doing, for the Engine page and `seedlab engine status`: live workers and
their heartbeat age, the queue, the runs in progress and where, and each device's load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from db import runs as run_store
from db import workers as worker_store
from db.records import RunRecord, WorkerRecord
from db.session import utcnow
from engine.core.epochs import epochs_done
from engine.core.settings import Settings
from engine.services.recovery import settle_for_readers

# A worker beats every poll (~0.5 s); this much silence means it is gone.
WORKER_ALIVE_WITHIN_S = 15.0
START_HINT = "Start it with `make run` (engine + dashboard) or `seedlab worker` (engine alone)."


@dataclass
class EngineStatus:
    workers: list[WorkerRecord]
    last_seen: WorkerRecord | None  # the most recent worker, alive or not
    queued: int
    running: list[RunRecord]
    settled: dict[int, str] = field(default_factory=dict)  # stale runs this check settled

    @property
    def alive(self) -> bool:
        return bool(self.workers)

    def heartbeat_age_s(self, worker: WorkerRecord) -> float:
        return max(0.0, (utcnow() - worker.heartbeat_at).total_seconds())

    def devices(self) -> list[dict[str, Any]]:
        """Each live worker's devices, with the runs in progress on each."""
        out = []
        for worker in self.workers:
            for device in worker.devices or []:
                key = device.get("key") or (
                    "cpu" if device.get("kind") == "cpu" else f"cuda:{device.get('index')}"
                )
                runs = [
                    r.id
                    for r in self.running
                    if r.worker_id == worker.id and (r.device or "").split(" ")[0] == key
                ]
                out.append({**device, "worker": worker.id, "key": key, "runs": runs})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "workers": [
                {
                    "id": w.id,
                    "hostname": w.hostname,
                    "pid": w.pid,
                    "slots": w.max_concurrent,
                    "heartbeat_age_s": round(self.heartbeat_age_s(w), 1),
                    "started_at": w.started_at,
                }
                for w in self.workers
            ],
            "last_heartbeat_age_s": (
                round(self.heartbeat_age_s(self.last_seen), 1) if self.last_seen else None
            ),
            "queued": self.queued,
            "running": [
                {
                    "id": r.id,
                    "name": r.name,
                    "device": r.device,
                    "worker_id": r.worker_id,
                    "epoch": int(epochs_done(r.summary)),
                    "epochs": r.config.get("epochs"),
                    "attempts": r.attempts,
                    "heartbeat_age_s": run_store.heartbeat_age_s(r),
                }
                for r in self.running
            ],
            "devices": self.devices(),
            "settled_stale_runs": self.settled,
        }


def engine_status(settings: Settings, db: Engine) -> EngineStatus:
    settled = settle_for_readers(settings, db)
    return EngineStatus(
        workers=worker_store.live_workers(db, within_s=WORKER_ALIVE_WITHIN_S),
        last_seen=worker_store.last_worker(db),
        queued=run_store.count_queued_runs(db),
        running=run_store.list_runs(db, statuses=["running"], limit=None),
        settled=settled,
    )
