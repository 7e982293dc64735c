"""Device assignment is a pure function: tested on fake device lists (no GPU needed)."""

from __future__ import annotations

import os

from engine.execution import devices
from engine.execution.devices import cpu_device, parse_nvidia_smi
from engine.execution.scheduling import Slot, assign_slot, free_requests, total_slots

CPU = {"kind": "cpu", "index": None, "name": "CPU"}
GPU0 = {"kind": "cuda", "index": 0, "name": "H100"}
GPU1 = {"kind": "cuda", "index": 1, "name": "H100"}
TWO_GPUS = [CPU, GPU0, GPU1]
CAPS = {"gpu_cap": 1, "cpu_cap": 1}


def test_gpu_runs_spread_over_gpus_and_wait_when_all_are_full():
    assert assign_slot("auto", TWO_GPUS, {}, **CAPS) == Slot("cuda", 0)
    assert assign_slot("auto", TWO_GPUS, {"cuda:0": 1}, **CAPS) == Slot("cuda", 1)
    assert assign_slot("cuda", TWO_GPUS, {"cuda:0": 1, "cuda:1": 1}, **CAPS) is None
    # auto waits for a GPU rather than crawl on the CPU when the machine has one
    assert assign_slot("auto", TWO_GPUS, {"cuda:0": 1, "cuda:1": 1}, **CAPS) is None
    # a per-GPU cap of 2: the least loaded GPU first
    load = {"cuda:0": 1}
    assert assign_slot("auto", TWO_GPUS, load, gpu_cap=2, cpu_cap=1) == Slot("cuda", 1)
    load = {"cuda:0": 1, "cuda:1": 1}
    assert assign_slot("auto", TWO_GPUS, load, gpu_cap=2, cpu_cap=1) == Slot("cuda", 0)


def test_cpu_runs_use_the_cpu_cap_and_see_no_gpu():
    slot = assign_slot("cpu", TWO_GPUS, {}, **CAPS)
    assert slot == Slot("cpu") and slot.visible_devices() == "" and slot.key == "cpu"
    assert assign_slot("cpu", TWO_GPUS, {"cpu": 1}, **CAPS) is None
    assert assign_slot("cpu", TWO_GPUS, {"cpu": 1}, gpu_cap=1, cpu_cap=2) == Slot("cpu")
    assert Slot("cuda", 1).visible_devices() == "1" and Slot("cuda", 1).key == "cuda:1"


def test_without_gpus_everything_goes_to_the_cpu():
    assert assign_slot("auto", [CPU], {}, **CAPS) == Slot("cpu")
    # cuda without a GPU still gets a slot: its runner fails at once saying what to do
    assert assign_slot("cuda", [CPU], {}, **CAPS) == Slot("cpu")
    assert assign_slot("auto", [CPU], {"cpu": 1}, **CAPS) is None


def test_claimable_requests_follow_free_slots():
    assert free_requests(TWO_GPUS, {}, **CAPS) == ["auto", "cpu", "cuda"]
    assert free_requests(TWO_GPUS, {"cpu": 1}, **CAPS) == ["auto", "cuda"]
    assert free_requests(TWO_GPUS, {"cuda:0": 1, "cuda:1": 1}, **CAPS) == ["cpu"]
    assert free_requests(TWO_GPUS, {"cpu": 1, "cuda:0": 1, "cuda:1": 1}, **CAPS) == []
    assert free_requests([CPU], {}, **CAPS) == ["auto", "cpu", "cuda"]
    assert free_requests([CPU], {"cpu": 1}, **CAPS) == []
    assert total_slots(TWO_GPUS, gpu_cap=2, cpu_cap=1) == 5


def test_claim_respects_the_requested_device_kinds_in_queue_order(db, demo_datasets):
    from db.writes import runs as run_writes
    from engine.services.launch import submit_run

    gpu_run = submit_run(db, "iris", {"device": "cuda"})
    cpu_run = submit_run(db, "iris", {"device": "cpu"})
    auto_run = submit_run(db, "iris", {})
    # only the CPU slot is free on a GPU machine: the older cuda run waits, the cpu run goes
    assert run_writes.claim_next_run(db, "w", devices=["cpu"]) == cpu_run
    assert run_writes.claim_next_run(db, "w", devices=["cpu"]) is None
    assert run_writes.claim_next_run(db, "w", devices=["auto", "cuda"]) == gpu_run
    assert run_writes.claim_next_run(db, "w", devices=["auto", "cuda"]) == auto_run


def test_nvidia_smi_output_is_parsed():
    out = "0, NVIDIA H100 80GB HBM3, 81559, 1024, 37\n1, NVIDIA H100 80GB HBM3, 81559, 0, [N/A]\n"
    gpus = parse_nvidia_smi(out)
    assert [g["index"] for g in gpus] == [0, 1]
    assert gpus[0]["name"] == "NVIDIA H100 80GB HBM3"
    assert gpus[0]["memory_total"] == 81559 * 2**20 and gpus[0]["memory_used"] == 2**30
    assert gpus[0]["utilization"] == 37.0 and gpus[1]["utilization"] is None
    assert parse_nvidia_smi("No devices were found\n") == []


def test_a_failing_nvidia_smi_is_logged_with_its_reason(tmp_path, monkeypatch, caplog):
    """A broken driver makes nvidia-smi exit non-zero: the worker falls back to torch and says
    why in its log (once), instead of silently showing fewer GPUs."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the "
        'NVIDIA driver." >&2\nexit 9\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(devices, "_logged_reasons", set())
    with caplog.at_level("WARNING", logger="seedlab.devices"):
        assert devices._gpus_from_nvidia_smi() is None
        assert devices._gpus_from_nvidia_smi() is None
    assert caplog.text.count("nvidia-smi exited with 9 (NVIDIA-SMI has failed because") == 1
    assert "reading GPUs through torch" in caplog.text


def test_cpu_device_describes_this_machine():
    cpu = cpu_device()
    assert cpu["kind"] == "cpu" and cpu["name"].startswith("CPU (")
    assert cpu["memory_total"] is None or cpu["memory_total"] > 0
