"""Engine benchmark: training throughput of Seedlab's loop vs plain PyTorch, checkpoint cost,
submit-to-running latency and cancel latency through a real worker.

    python bench/bench_engine.py                    # prints the tables
    python bench/bench_engine.py --write-results    # also updates its section of RESULTS.md
    python bench/bench_engine.py --quick            # smoke run, a few seconds

In one process, on the same synthetic table and the same MLP (same init, optimizer, batch size,
per-epoch validation), it times:
- `engine.ml.train.train` (what a runner calls, with a no-op reporter), and the same with the
  per-epoch resume checkpoint written (what a runner does, minus the DB);
- a plain PyTorch loop over the same on-device tensors with index-slice batches (the floor);
- a `DataLoader(TensorDataset)` loop (the usual way), per-sample collate.
Variants are interleaved and repeated; the median is reported. On CUDA the engine uses bf16
autocast and TF32 (engine/ml/device.py); the plain loops run fp32 eager, the way most hand-written
loops do, so on a GPU the engine's column also shows what its precision choice is worth.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_metrics import RESULTS_PATH, replace_section  # noqa: E402
from engine.core.config import validate_config  # noqa: E402
from engine.ml.checkpoints import capture_state, save_train_state  # noqa: E402
from engine.ml.device import choose_device  # noqa: E402
from engine.ml.inputs import InputSpec  # noqa: E402
from engine.ml.models.build import build_model  # noqa: E402
from engine.ml.train import TrainData, train  # noqa: E402

# The engine's own overhead is measured against this one: the same fused optimizer, so the
# difference is the engine's bookkeeping (reporting, cancel checks, NaN checks), nothing else.
PLAIN_FUSED = "plain PyTorch loop, fused AdamW (the engine's optimizer)"
BEGIN, END = "<!-- bench_engine:begin -->", "<!-- bench_engine:end -->"


class NullReporter:
    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def make_data(rows: int, features: int, classes: int, device: torch.device) -> TrainData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, features, generator=g)
    w = torch.randn(features, classes, generator=g)
    y = (x @ w + 0.5 * torch.randn(rows, classes, generator=g)).argmax(dim=1)
    n_val = rows // 10
    return TrainData(
        x_train=x[n_val:].to(device),
        y_train=y[n_val:].to(device),
        x_val=x[:n_val].to(device),
        y_val=y[:n_val].to(device),
        task="classification",
        n_outputs=classes,
        spec=InputSpec("tabular", (features,)),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _validate(model: nn.Module, data: TrainData) -> float:
    model.eval()
    with torch.no_grad():
        return nn.functional.cross_entropy(model(data.x_val), data.y_val).item()


def plain_loop(config, data: TrainData, choice, fused: bool = False) -> None:  # noqa: ANN001
    torch.manual_seed(config.seed)
    model = build_model(config, data.spec, data.n_outputs).to(choice.device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )
    g = torch.Generator(device=data.x_train.device).manual_seed(config.seed)
    n, bs = len(data.x_train), config.batch_size
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(n, device=data.x_train.device, generator=g)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _validate(model, data)
    _sync(choice.device)


def dataloader_loop(config, data: TrainData, choice, workers: int = 0) -> None:  # noqa: ANN001
    torch.manual_seed(config.seed)
    model = build_model(config, data.spec, data.n_outputs).to(choice.device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    # The usual way: CPU tensors, a shuffled DataLoader that collates sample by sample.
    dataset = TensorDataset(data.x_train.cpu(), data.y_train.cpu())
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=choice.device.type == "cuda",
    )
    for _ in range(config.epochs):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(choice.device, non_blocking=True), yb.to(choice.device)
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _validate(model, data)
    _sync(choice.device)


def engine_loop(config, data: TrainData, choice, checkpoint_dir: Path | None = None) -> None:  # noqa: ANN001
    hook = None
    if checkpoint_dir is not None:
        path = checkpoint_dir / "resume.pt"

        def hook(epoch, capture):  # noqa: ANN001, ANN202
            save_train_state(path, capture())

    train(config, data, NullReporter(), choice, on_epoch_end=hook)
    _sync(choice.device)


def checkpoint_cost(config, data: TrainData, choice, path: Path) -> tuple[float, int]:  # noqa: ANN001
    """Seconds to capture and write one resume checkpoint of this model (median of 20)."""
    model = build_model(config, data.spec, data.n_outputs).to(choice.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    loss = nn.functional.cross_entropy(model(data.x_train[:64]), data.y_train[:64])
    loss.backward()
    optimizer.step()  # so the optimizer has its moment buffers, as after an epoch
    generator = torch.Generator(device=data.x_train.device)
    scaler = torch.amp.GradScaler(enabled=False)
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        state = capture_state(
            epoch=1,
            model=model,
            optimizer=optimizer,
            scheduler=None,
            scaler=scaler,
            generator=generator,
            history=[{"train_loss": 1.0}] * 50,
            best_score=1.0,
            best_epoch=1,
            best_model=best,
        )
        save_train_state(path, state)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), path.stat().st_size


def timed(fn, *args) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def throughput(args: argparse.Namespace) -> tuple[list[str], dict[str, float]]:
    choice = choose_device(args.device)
    config = validate_config(
        {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "hidden_sizes": [64],
            "dropout": 0.0,
            "lr_schedule": "none",
            "restore_best_weights": False,
            "device": args.device,
        }
    )
    data = make_data(args.rows, args.features, 3, choice.device)
    samples = len(data.x_train) * config.epochs
    tmp = Path(tempfile.mkdtemp(prefix="seedlab-bench-"))
    variants = {
        "plain PyTorch loop (index slices)": lambda: plain_loop(config, data, choice),
        PLAIN_FUSED: lambda: plain_loop(config, data, choice, fused=True),
        "Seedlab engine train()": lambda: engine_loop(config, data, choice),
        "Seedlab engine + resume checkpoint every epoch": lambda: engine_loop(
            config, data, choice, tmp
        ),
        "DataLoader(TensorDataset) loop": lambda: dataloader_loop(config, data, choice),
    }
    for fn in variants.values():  # warm-up (allocators, first-call costs)
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            times[name].append(timed(fn))
    medians = {k: statistics.median(v) for k, v in times.items()}
    plain = medians["plain PyTorch loop (index slices)"]
    loader = medians["DataLoader(TensorDataset) loop"]
    lines = [
        "| loop | median s | samples/s | vs plain loop (default AdamW) | vs DataLoader |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in medians.items():
        lines.append(
            f"| {name} | {t:.3f} | {samples / t:,.0f} | {100 * (t / plain - 1):+.1f} % time | "
            f"{loader / t:.2f}× |"
        )
    per_ckpt, size = checkpoint_cost(config, data, choice, tmp / "alone.pt")
    shutil.rmtree(tmp, ignore_errors=True)
    figures = {
        "overhead_pct": 100 * (medians["Seedlab engine train()"] / medians[PLAIN_FUSED] - 1),
        "vs_plain": plain / medians["Seedlab engine train()"],
        "vs_loader": loader / medians["Seedlab engine train()"],
        "ckpt_ms": 1000 * per_ckpt,
        "ckpt_pct": 100 * per_ckpt / (medians["Seedlab engine train()"] / config.epochs),
        "ckpt_bytes": size,
        "epoch_ms": 1000 * medians["Seedlab engine train()"] / config.epochs,
        "samples": samples,
        "device": choice.description,
    }
    return lines, figures


@contextlib.contextmanager
def worker_home(*worker_args: str) -> Iterator[tuple[object, object]]:
    """A throwaway Seedlab home with the demo tables and a real worker subprocess polling it at
    its default interval (with `worker_args`); yields (settings, db) once the worker beats."""
    from db import workers as worker_store
    from db.migrate import upgrade_to_head
    from db.session import get_db
    from engine.core.settings import Settings
    from engine.data.demo import register_demo_datasets

    home = Path(tempfile.mkdtemp(prefix="seedlab-bench-home-"))
    env = dict(os.environ, SEEDLAB_HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("SEEDLAB_DB_URL", None)
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'seedlab.db'}")
    settings.ensure_dirs()
    db = get_db(settings)
    upgrade_to_head(db)
    register_demo_datasets(settings, db)
    worker = subprocess.Popen(
        [sys.executable, "-m", "engine.execution.worker", *worker_args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not worker_store.live_workers(db, within_s=5) and time.monotonic() < deadline:
            time.sleep(0.1)  # the worker is up and polling
        time.sleep(1)
        yield settings, db
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def _wait_while(condition: Callable[[], bool], timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while condition() and time.monotonic() < deadline:
        time.sleep(interval)


def latencies(repeats: int) -> tuple[list[float], list[float]]:
    """Through one real worker subprocess polling at its default interval, in seconds:
    - submit → running: from a queued row to the run claimed and its runner spawned;
    - cancel → cancelled: from the cancel flag (what `seedlab runs cancel` sets) on a run in
      mid-training to its `cancelled` status: the runner's own check, its checkpoint and the
      worker's bookkeeping. tests/test_engine_faults.py checks that a cancel stops a run
      cleanly; how fast is measured here, not asserted there."""
    from db import runs as run_store
    from db.writes import runs as run_writes
    from engine.services.launch import submit_run

    long_run = {"epochs": 5000, "batch_size": 8, "early_stopping_patience": 0}
    submits, cancels = [], []
    with worker_home() as (_, db):
        for _ in range(repeats):
            run_id = submit_run(db, "iris", {"epochs": 1})
            submitted = time.perf_counter()
            while run_store.get_run(db, run_id).status == "queued":
                time.sleep(0.01)
            submits.append(time.perf_counter() - submitted)
            _wait_while(lambda r=run_id: run_store.get_run(db, r).status == "running", 120, 0.1)
        for _ in range(repeats):
            run_id = submit_run(db, "breast_cancer", long_run)
            _wait_while(lambda r=run_id: not run_store.get_run(db, r).summary, 120, 0.05)
            run_writes.request_cancel(db, run_id)
            requested = time.perf_counter()
            _wait_while(lambda r=run_id: run_store.get_run(db, r).status == "running", 60, 0.01)
            cancels.append(time.perf_counter() - requested)
    return submits, cancels


def _spare_ready(settings) -> bool:  # noqa: ANN001
    path = settings.home / "spare-runner.log"
    return path.is_file() and b"ready" in path.read_bytes()


def first_point_latencies(repeats: int) -> tuple[list[float], list[float]]:
    """Queued demo run → its first stored metric point, with the engine running and idle, in
    seconds: through a worker with its warm runner ready (engine/execution/spare.py), and,
    interleaved with it in this process, through a worker that starts each run's process cold
    (`--no-warm-runner`, what every run did before). What the Home page's demo button waits
    for before the Run page can draw a curve."""
    from db import runs as run_store
    from db.writes import runs as run_writes
    from engine.services.permissions import LOCAL_ADMIN
    from engine.services.runs import queue_demo_run

    warm, cold = [], []

    def one(settings, db, wait_for_spare: bool) -> float:  # noqa: ANN001
        if wait_for_spare:  # idle engine: its spare has started and warmed up
            _wait_while(lambda: not _spare_ready(settings), 120, 0.05)
        else:
            time.sleep(1)
        run_id = queue_demo_run(settings, db, LOCAL_ADMIN)
        queued = time.perf_counter()
        _wait_while(lambda: not run_store.get_run(db, run_id).summary, 120, 0.01)
        latency = time.perf_counter() - queued
        run_writes.request_cancel(db, run_id)  # the rest of the run is not measured here
        _wait_while(lambda: run_store.get_run(db, run_id).status in ("queued", "running"), 300, 0.1)
        return latency

    with worker_home() as (warm_home, warm_db), worker_home("--no-warm-runner") as (c_home, c_db):
        for _ in range(repeats):
            warm.append(one(warm_home, warm_db, True))
            cold.append(one(c_home, c_db, False))
    return warm, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: fair on a shared machine)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats, args.latency_repeats = 2000, 2, 1, 1

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    lines, figures = throughput(args)
    submits, cancels = latencies(args.latency_repeats)
    warm, cold = first_point_latencies(args.latency_repeats)
    load_after = os.getloadavg()
    median_latency = statistics.median(submits)
    section = [
        BEGIN,
        "## Engine: training throughput, checkpoint cost, submit-to-running and cancel latency",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
        f"device {figures['device']}",
        f"- command: `python bench/bench_engine.py{' --quick' if args.quick else ''} "
        f"--write-results`",
        f"- load average (1/5/15 min) before: {'/'.join(f'{v:.2f}' for v in load_before)}, "
        f"after: {'/'.join(f'{v:.2f}' for v in load_after)}",
        f"- workload: MLP (one hidden layer of 64) on {args.rows:,} rows × {args.features} "
        f"features, 3 classes, "
        f"batch {args.batch_size}, {args.epochs} epochs ({figures['samples']:,} samples), "
        f"AdamW, validation each epoch; {args.repeats} interleaved repeats, median",
        "",
        *lines,
        "",
        f"- engine overhead vs the plain loop with the same fused optimizer: "
        f"{figures['overhead_pct']:+.1f} % time (aim ≤ 5 %); the engine is "
        f"{figures['vs_plain']:.2f}× as fast as a plain loop with the default (for-each) AdamW "
        f"and {figures['vs_loader']:.2f}× as fast as the DataLoader loop (aim ≥ 1.5×). The "
        "engine picks the fused optimizer kernel (engine/ml/train.py `make_optimizer`), keeps "
        "each batch's loss on the device and syncs once per epoch.",
        f"- resume checkpoint (model, AdamW state, best weights, RNG, history): "
        f"{figures['ckpt_ms']:.1f} ms to capture and write, {figures['ckpt_bytes'] / 1024:.0f} KiB;"
        f" {figures['ckpt_pct']:.1f} % of this workload's {figures['epoch_ms']:.0f} ms epoch, "
        "so it is written every epoch by default; `SEEDLAB_CHECKPOINT_MIN_INTERVAL_S` spaces them "
        "out for runs whose epochs are shorter than a checkpoint is worth.",
        f"- submit → running (claimed, runner spawned) through a real worker polling every "
        f"0.5 s: median {median_latency:.2f} s over {len(submits)} runs "
        f"(min {min(submits):.2f}, max {max(submits):.2f}; aim < 2 s).",
        f"- cancel → cancelled on a run in mid-training (the runner stops at its next check, "
        f"writes its checkpoint; the worker reaps it): median {statistics.median(cancels):.2f} s "
        f"over {len(cancels)} runs (min {min(cancels):.2f}, max {max(cancels):.2f}; aim < 5 s).",
        f"- queued demo run → its first stored metric point, engine running and idle: median "
        f"{statistics.median(warm):.2f} s with the warm runner (min {min(warm):.2f}, max "
        f"{max(warm):.2f}; aim ≤ 2 s) against {statistics.median(cold):.2f} s with a runner "
        f"started for the run (`--no-warm-runner`, min {min(cold):.2f}, max {max(cold):.2f}), "
        f"interleaved, {len(warm)} runs each: "
        f"{statistics.median(cold) / max(statistics.median(warm), 1e-9):.1f}× sooner. The "
        "first point is the training loss of the run's first optimizer step, flushed at once "
        "(engine/execution/runner.py); the Run page redraws every second.",
        *(
            [
                "- No GPU on this machine: the CUDA path (bf16 autocast, TF32, one GPU per run "
                "through CUDA_VISIBLE_DEVICES) is not measured here; on a GPU machine run "
                "`python bench/bench_engine.py --device cuda --write-results`."
            ]
            if "cuda" not in figures["device"]
            else []
        ),
        "- Timings on a shared machine move with its load (see the load average above); the "
        "variants are interleaved so each sees the same conditions.",
        END,
    ]
    text = "\n".join(section)
    print(text)
    if args.write_results:
        replace_section(RESULTS_PATH, BEGIN, END, text)


if __name__ == "__main__":
    main()
