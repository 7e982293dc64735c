"""The Engine page and the Run page's Resume button, through AppTest on a real temp DB."""

from __future__ import annotations

import os

import torch
from torch import nn

from db import runs as run_store
from db.writes import runs as run_writes
from db.writes import workers as worker_writes
from engine.core.run_files import resume_path
from engine.execution import devices
from engine.execution.devices import add_gpu_load
from engine.ml.checkpoints import capture_state, save_train_state
from engine.services.launch import submit_run
from tests.support.pages import button, open_page, texts

FAKE_GPU = {
    "kind": "cuda",
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "memory_total": 80 * 2**30,
    "memory_used": 12 * 2**30,
    "utilization": 87.0,
}
CPU = {"kind": "cpu", "index": None, "name": "CPU (2 cores, x86_64)", "memory_total": 2**33}


def test_engine_page_says_when_no_engine_runs(settings, db) -> None:
    at = open_page("views/engine.py")
    warning = texts(at.warning)
    assert "Engine not running" in warning and "seedlab worker" in warning
    assert "never run" in warning


def test_a_gpu_load_that_cannot_be_read_shows_as_unknown(settings, db, caplog, monkeypatch) -> None:
    """Without pynvml (or with no GPU at all, as on this machine) torch cannot read a GPU's
    load: the probe says why, once in the log and on the Engine page, instead of nothing."""
    probed = {**FAKE_GPU, "memory_used": None, "utilization": None}
    if torch.cuda.is_available():
        probed["index"] = torch.cuda.device_count()  # no such GPU: the read fails here too
    monkeypatch.setattr(devices, "_logged_reasons", set())  # said once per engine process
    with caplog.at_level("WARNING", logger="seedlab.devices"):
        add_gpu_load(probed, probed["index"])
        add_gpu_load(dict(probed), probed["index"])
    assert probed["load_unknown"] and probed["utilization"] is None
    assert caplog.text.count("GPU memory used and utilization are unknown") == 1
    worker_writes.register_worker(
        db, "w-gpu", hostname="box", pid=os.getpid(), max_concurrent=1, devices=[CPU, probed]
    )
    at = open_page("views/engine.py")
    caption = texts(at.caption)
    assert f"cuda:{probed['index']} on w-gpu: memory used and utilization unknown" in caption
    assert probed["load_unknown"] in caption


def test_engine_page_shows_workers_runs_and_devices(settings, db, demo_datasets) -> None:
    worker_writes.register_worker(
        db, "w-gpu", hostname="box", pid=os.getpid(), max_concurrent=2, devices=[CPU, FAKE_GPU]
    )
    run_id = submit_run(db, "iris", {"epochs": 5}, name="on the gpu")
    assert run_writes.claim_next_run(db, "w-gpu") == run_id
    run_writes.mark_started(db, run_id, pid=os.getpid(), device="cuda:0 (NVIDIA H100 80GB HBM3)")
    submit_run(db, "iris", {"epochs": 5})  # waits in the queue

    at = open_page("views/engine.py")
    assert not at.warning
    values = {m.label: m.value for m in at.metric}
    assert values["Engine"] == "running" and values["Queued"] == "1"
    assert values["In progress"] == "1"
    runs_table, devices_table = (df.value for df in at.dataframe)
    assert runs_table["name"].tolist() == ["on the gpu"]
    assert devices_table["device"].tolist() == ["cpu", "cuda:0"]
    gpu = devices_table.iloc[1]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["runs"] == f"#{run_id}"
    assert gpu["memory used (GiB)"] == 12 and gpu["utilization %"] == 87


def _cancelled_with_checkpoint(settings, db) -> int:
    run_id = submit_run(db, "iris", {"epochs": 5})
    run_writes.claim_next_run(db, "w")
    run_writes.finish_run(db, run_id, "cancelled")
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = capture_state(
        epoch=2,
        model=model,
        optimizer=optimizer,
        scheduler=None,
        scaler=torch.amp.GradScaler(enabled=False),
        generator=torch.Generator(),
        history=[],
        best_score=1.0,
        best_epoch=2,
        best_model=None,
    )
    save_train_state(resume_path(settings, run_id), state)
    return run_id


def test_run_page_resumes_a_cancelled_run(settings, db, demo_datasets) -> None:
    run_id = _cancelled_with_checkpoint(settings, db)
    at = open_page("views/run_detail.py", run=str(run_id))
    button(at, "Resume").click().run()
    assert not at.exception
    run = run_store.get_run(db, run_id)
    assert run.status == "queued" and run.attempts == 1
    assert "resumes after epoch 2" in texts(at.info) + texts(at.toast)


def test_run_page_has_no_resume_without_a_checkpoint(settings, db, demo_datasets) -> None:
    run_id = submit_run(db, "iris", {"epochs": 5})
    run_writes.request_cancel(db, run_id)  # cancelled while queued: nothing to resume
    at = open_page("views/run_detail.py", run=str(run_id))
    assert "Resume" not in [b.label for b in at.button]
