"""Two processes draining one queue at once: what proves a claim is atomic (runs and jobs)."""

from __future__ import annotations

import importlib
import multiprocessing as mp
from typing import Any

from db.session import make_engine


def _drain(url: str, worker: str, claim: str, queue: Any) -> None:  # noqa: ANN401
    module, name = claim.rsplit(".", 1)
    claim_next = getattr(importlib.import_module(module), name)
    db = make_engine(url)
    claimed = []
    while (item := claim_next(db, worker)) is not None:
        claimed.append(item)
    queue.put(claimed)


def claimed_by_two_processes(url: str, claim: str) -> list[int]:
    """Every id two spawned processes claimed with `claim` (a dotted function path such as
    "db.writes.runs.claim_next_run") until the queue was empty, in claim order per process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(url, f"w{i}", claim, queue)) for i in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return results[0] + results[1]
