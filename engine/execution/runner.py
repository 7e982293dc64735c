"""One run, in its own process: `python -m engine.execution.runner RUN_ID`.

Loads the run and its dataset, trains with a DB-backed reporter, evaluates on the test split,
writes the checkpoint and report, and sets the final status. Every failure becomes `failed`
with a sentence a user can act on; the full traceback goes to the run's log.

A data-parallel run (`processes > 1`) runs this module once per process under torchrun
(executors/torchrun.py): rank 0 does all of the above; the other ranks read the run, train their
share and exit, writing nothing to the database (engine/ml/ddp.py).

`python -m engine.execution.runner --spare` is the same runner started ahead of its run (the
worker keeps one, engine/execution/spare.py): it imports torch and the engine, warms the CPU
kernels, then waits for one run id on stdin, points its output at that run's log and runs it
exactly as above; then it exits, so a crash still ends one run only. An empty stdin (the
worker stopped or no longer needs it) ends it quietly.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from db import datasets as dataset_store
from db import runs as run_store
from db.session import get_db
from db.writes import artifacts as artifact_writes
from db.writes import digests as digest_writes
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from engine.core.atomic import write_json_atomic
from engine.core.config import RunConfig, validate_config
from engine.core.errors import DatasetError, SeedlabError, TrainingError
from engine.core.run_files import (
    auto_choice_path,
    checkpoint_path,
    log_path,
    predictions_path,
    report_path,
    resume_path,
)
from engine.core.settings import Settings
from engine.data.version_rows import stored_version
from engine.execution.stop_marker import engine_is_stopping
from engine.execution.system_metrics import SystemSampler, start_for_run
from engine.ml import ddp
from engine.ml.auto_select import AutoChoice, choose_model, reads_own_data
from engine.ml.checkpoints import (
    InvalidCheckpoint,
    TrainState,
    checkpoint_epoch,
    load_train_state,
    save_train_state,
)
from engine.ml.device import DeviceChoice, choose_device
from engine.ml.distill import attach_teacher
from engine.ml.importance import importance_at_end_of_run
from engine.ml.pipeline import evaluate_on_test, file_digest, prepare_dataset, save_checkpoint
from engine.ml.prepared import PreparedData
from engine.ml.train import ListReporter, TrainData, train
from engine.ml.verdict import verdict_or_none
from engine.services.provenance import record_what_ran

log = logging.getLogger("seedlab.runner")

FLUSH_SECONDS = 1.0
FLUSH_POINTS = 500
# Training-loss points per epoch beside the epoch's own (train(loss_points_per_epoch=…)): a
# line on the Run page within an epoch, at about one device sync every 5 % of an epoch.
LOSS_POINTS_PER_EPOCH = 20


class EngineShutdown(Exception):
    """SIGTERM from the worker (the engine is stopping), or the worker died: put the run back
    in the queue so the next engine resumes it."""


class WorkerGone(EngineShutdown):
    """The worker that started this run died: requeue the run for the next one."""


# Why a data-parallel run stopped when one of its processes did (torchrun then terminates the
# others, with the signal an engine shutdown sends: executors/torchrun.py tells them apart).
PROCESS_FAILED = (
    "A data-parallel training process failed or was killed, so the run stopped. "
    "The run's log has that process's traceback."
)


class EpochCheckpointer:
    """The train loop's `on_epoch_end` hook: flush the epoch's metrics, then save the resume
    checkpoint, in that order, so a checkpoint at epoch k implies points up to k are stored."""

    def __init__(self, path: Path, reporter: DbReporter, min_interval_s: float = 0.0) -> None:
        self.path = path
        self.reporter = reporter
        self.min_interval_s = min_interval_s
        self.last_saved = -float("inf")
        self.seconds = 0.0
        self.count = 0

    def __call__(self, epoch: int, capture: Callable[[], TrainState]) -> None:
        if time.monotonic() - self.last_saved < self.min_interval_s:
            return
        started = time.perf_counter()
        self.reporter.flush()
        save_train_state(self.path, capture())
        self.last_saved = time.monotonic()
        self.seconds += time.perf_counter() - started
        self.count += 1


class DbReporter:
    """Buffers metric points and flushes them with a heartbeat at most every second.

    The run's first points are flushed at once, so its curve appears as soon as it trains.
    Each flush also reads `cancel_requested`, so a cancel is seen within about a second.
    """

    def __init__(self, db, run_id: int) -> None:  # noqa: ANN001
        self.db = db
        self.run_id = run_id
        self.buffer: list[tuple[str, int, float, float]] = []
        self.last_flush = time.monotonic()
        self.cancelled = False
        self.sent_any = False
        worker_pid = os.environ.get("SEEDLAB_WORKER_PID", "")
        self.worker_pid = int(worker_pid) if worker_pid.isdigit() else None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        now = time.time()
        self.buffer += [(k, step, float(v), now) for k, v in metrics.items()]
        if len(self.buffer) >= FLUSH_POINTS or not self.sent_any:
            self.flush()

    def should_stop(self) -> bool:
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()
        return self.cancelled

    def flush(self) -> None:
        if self.worker_pid is not None and not ddp.launcher_alive(self.worker_pid):
            # Our worker died (SIGKILL, OOM): stop here; the run resumes under the next one.
            raise WorkerGone()
        points, self.buffer = self.buffer, []
        self.sent_any = self.sent_any or bool(points)
        self.cancelled = run_writes.record_progress(self.db, self.run_id, points) or self.cancelled
        self.last_flush = time.monotonic()


def _on_sigterm(_signum, _frame) -> None:  # noqa: ANN001
    raise EngineShutdown()


def _fail(db, run_id: int, message: str) -> None:  # noqa: ANN001
    log.error("run %s failed: %s", run_id, message)
    run_writes.finish_run(db, run_id, "failed", message)


def _record_artifact(
    db: Engine, run_id: int, kind: str, path: Path, size_digest: tuple[int, str] | None = None
) -> None:
    """Register a file of the run (by its name in the run folder) with its size and sha256."""
    size, digest = size_digest or file_digest(path)
    artifact_writes.add_artifact(
        db, run_id, kind=kind, path=path.name, size_bytes=size, sha256=digest
    )


def execute(settings: Settings, run_id: int) -> str:
    """Run to a final status and return it.

    Data-parallel: called on every rank of an initialised process group (torchrun's, through
    `main`, or one a launcher such as Ray Train's TorchTrainer set up, with RANK/LOCAL_RANK/
    WORLD_SIZE as torchrun sets them), it trains this rank's share. Every rank needs the
    settings' database (it reads the run and its dataset) and the run folder (every rank loads
    the resume checkpoint); only rank 0 writes: status, metrics, checkpoints, report. Other
    ranks return "completed" or "cancelled" when training ended, and raise on failure (rank 0
    then fails the run). The caller owns the group: create it before, destroy it after.
    """
    parallel = ddp.current()
    db = get_db(settings)
    run = run_store.get_run(db, run_id)
    if run is None:
        raise SystemExit(f"run {run_id} does not exist")
    if run.status != "running":
        log.warning("run %s is %s, not running; nothing to do", run_id, run.status)
        return run.status
    if run.source == "recipe":  # the team's own script, supervised in a subprocess
        from engine.execution.recipe_runner import execute_recipe

        return execute_recipe(settings, db, run)
    run_dir = settings.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    main = parallel.is_main
    status = "failed"
    sampler: SystemSampler | None = None
    recorder: threading.Thread | None = None
    try:
        config = validate_config(run.config)
        choice = parallel.place(choose_device(config.device))
        if main:
            run_writes.mark_started(db, run_id, pid=os.getpid(), device=_device_text(choice))
            # What ran (Seedlab's own checkout: built-in runs run our code) and sys/… metrics.
            # Beside the run's start, not before it: git and the package list take about a
            # second, which a demo audience would wait for before the first point. Awaited
            # before the run ends, so a finished run has its record.
            recorder = threading.Thread(
                target=record_what_ran,
                args=(settings, db, run_id, _device_text(choice), Path(__file__).parent),
                name="record-what-ran",
                daemon=True,
            )
            recorder.start()
            sampler = start_for_run(db, run, on_gpu=choice.device.type == "cuda")
        log.info(
            "run %s %r on %s; config %s%s",
            run_id,
            run.name,
            choice.description,
            json.dumps(run.config),
            f"; process {parallel.rank} of {parallel.world}" if parallel.active else "",
        )
        if dataset_store.get_dataset(db, run.dataset_id) is None:
            raise DatasetError(f"The run's dataset (id {run.dataset_id}) no longer exists.")
        # The exact version it was queued on: its base files with its patch applied.
        dataset = stored_version(db, run.dataset_id, run.dataset_version)
        data = prepare_dataset(settings, dataset, config, choice)
        log.info(
            "split train/val/test = %s, input %s (stratified: %s)",
            data.split_sizes,
            data.train_data.spec.to_dict(),
            data.stratified,
        )

        teacher = attach_teacher(settings, config, data, choice)  # distillation, else None
        if teacher is not None:
            log.info("distilling from teacher run #%s", config.distill_from)
        reporter = DbReporter(db, run_id) if main else None
        if config.model == "auto":  # choose on the validation split (engine/ml/auto_select.py)
            # A candidate that reads the data its own way (a pretrained encoder's tokenizer)
            # gets it prepared for its config; the chosen one's tensors then train the run.
            own: dict[str, PreparedData] = {}

            def prepare(candidate: RunConfig) -> TrainData:
                own[candidate.model] = prepare_dataset(settings, dataset, candidate, choice)
                return own[candidate.model].train_data

            config, auto = _choose_model(
                settings, run_id, config, data, choice, reporter, prepare=prepare
            )
            if config.model in own:
                data = own[config.model]
            elif reads_own_data(dataset.kind, config.model):  # chosen without a race
                data = prepare_dataset(settings, dataset, config, choice)
            if auto.cancelled:
                run_writes.finish_run(db, run_id, "cancelled")
                status = "cancelled"
                return status
            if main:
                run_writes.record_chosen_config(db, run_id, config.model_dump(mode="json"))
                _record_artifact(db, run_id, "auto_choice", auto_choice_path(settings, run_id))
        resume = load_train_state(resume_path(settings, run_id))  # on every rank
        if not main:
            result = train(  # the same points as rank 0: their means are collectives
                config,
                data.train_data,
                ListReporter(),
                choice,
                resume=resume,
                parallel=parallel,
                loss_points_per_epoch=LOSS_POINTS_PER_EPOCH,
            )
            return "cancelled" if result.cancelled else "completed"
        assert reporter is not None
        # Points a previous attempt wrote after its checkpoint are replaced, not doubled: the
        # resumed run logs those steps again.
        metric_writes.discard_after_epoch(db, run_id, resume.epoch if resume else 0)
        if resume is not None:
            log.info(
                "resuming after epoch %d of %d (attempt %d)",
                resume.epoch,
                config.epochs,
                run.attempts + 1,
            )
        # Resume checkpoints are written every epoch by default; on runs with very short epochs
        # SEEDLAB_CHECKPOINT_MIN_INTERVAL_S sets a minimum number of seconds between two.
        checkpointer = EpochCheckpointer(
            resume_path(settings, run_id), reporter, settings.checkpoint_min_interval_s
        )
        result = train(
            config,
            data.train_data,
            reporter,
            choice,
            resume=resume,
            on_epoch_end=checkpointer,
            parallel=parallel,
            loss_points_per_epoch=LOSS_POINTS_PER_EPOCH,
        )
        reporter.flush()
        _await(recorder)
        if checkpointer.count:
            log.info(
                "%d resume checkpoints, %.1f ms each",
                checkpointer.count,
                1000 * checkpointer.seconds / checkpointer.count,
            )
        checkpoint = checkpoint_path(settings, run_id)
        size, digest = save_checkpoint(
            checkpoint,
            result.model,
            config,
            data,
            epoch=result.epochs_completed,
            schema=dataset.schema,
        )
        _record_artifact(db, run_id, "checkpoint", checkpoint, (size, digest))
        if result.cancelled:
            log.info("cancel requested: stopped after %d epochs", result.epochs_completed)
            status = "cancelled"
            run_writes.finish_run(db, run_id, "cancelled")
            return status

        report = evaluate_on_test(result.model, data, choice, predictions_path(settings, run_id))
        final_step = max(result.steps_completed, 1)
        finals = dict(report["metrics"])
        if result.best_epoch:
            # Which epoch's weights were evaluated (restore_best_weights).
            finals["best_epoch"] = float(result.best_epoch)
            report["best_epoch"] = result.best_epoch
        run_writes.record_progress(
            db, run_id, [(k, final_step, v, time.time()) for k, v in finals.items()]
        )
        # Permutation importance of table models: capped to about a second (ml/importance.py).
        report.update(importance_at_end_of_run(checkpoint, data, config.monitor, config.seed))
        report_file = report_path(settings, run_id)
        write_json_atomic(report_file, report)  # the dashboard may read it meanwhile
        _record_artifact(db, run_id, "report", report_file)
        log.info("test metrics: %s", json.dumps(report["metrics"]))
        status = "completed"
        # Baselines and warnings on the same test split (engine/ml/verdict.py), seconds at most.
        run_writes.finish_run(
            db, run_id, "completed", verdict=verdict_or_none(config, data, result, report)
        )
    except BaseException as exc:
        if not main:
            raise  # rank 0 settles the run: a failure here stops it through torchrun
        if parallel.active:
            # A second SIGTERM (torchrun stopping this rank) must not cut the settling short.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _await(recorder)
        status = _settle(settings, db, run, exc, parallel)
    finally:
        if sampler is not None:
            sampler.stop()
        if main:  # after the sampler's last points: what charts draw of the run (curves.py)
            digest_writes.write_run_digests(db, run_id)
        path = log_path(settings, run_id)
        if main and path.exists():
            sys.stdout.flush()
            _record_artifact(db, run_id, "log", path)
    return status


def _await(recorder: threading.Thread | None) -> None:
    """Wait for the record of what ran (bounded: its git calls time out after 5 s each)."""
    if recorder is not None:
        recorder.join(timeout=60)


def _choose_model(
    settings: Settings,
    run_id: int,
    config: RunConfig,
    data: PreparedData,
    choice: DeviceChoice,
    reporter: DbReporter | None,
    *,
    prepare: Callable[[RunConfig], TrainData] | None = None,
) -> tuple[RunConfig, AutoChoice]:
    """The config a `model=auto` run trains, and what was tried (written to auto_choice.json
    by rank 0). Only the training and validation tensors go to the choice, never the test
    split. Each process of a data-parallel run races the candidates alone, on all the training
    rows, so they make the choice a single process would; they then check that they agree."""
    parallel = ddp.current()
    chosen, auto = choose_model(
        config,
        data.train_data,
        choice,
        should_stop=reporter.should_stop if reporter is not None else None,
        prepare=prepare,
    )
    if parallel.active and not auto.cancelled:
        mine = next(i for i, trial in enumerate(auto.trials) if trial.chosen)
        rank0 = [parallel.agree(mine == i) for i in range(len(auto.trials))]
        if not rank0[mine]:
            raise TrainingError(
                "The data-parallel processes chose different models under model=auto (their "
                "scores differed on this device). Name the model (model=…) and launch again."
            )
    if reporter is not None:
        write_json_atomic(auto_choice_path(settings, run_id), auto.to_dict())
        log.info("model=auto: %s", auto.reason)
    return chosen, auto


def _collective_failed(exc: BaseException) -> bool:
    """A collective broke because a peer process went away: NCCL raises DistError, gloo a plain
    RuntimeError naming its transport ("[…/gloo/transport/tcp/pair.cc] Connection reset")."""
    return isinstance(exc, torch.distributed.DistError) or (
        isinstance(exc, RuntimeError) and "gloo" in str(exc).lower()
    )


def _settle(settings: Settings, db: Engine, run, exc: BaseException, parallel) -> str:  # noqa: ANN001
    """The run's status after `exc` stopped it (rank 0 only)."""
    run_id = run.id
    if isinstance(exc, StatementError) and isinstance(exc.orig, EngineShutdown):
        # The SIGTERM arrived while a metric was being written: SQLAlchemy wraps what the
        # handler raised. Still a shutdown (requeue), not a failure.
        exc = exc.orig
    if parallel.active and not isinstance(exc, WorkerGone):
        peer_failed = isinstance(exc, EngineShutdown) or _collective_failed(exc)
        if peer_failed and not engine_is_stopping(settings.run_dir(run_id)):
            traceback.print_exc()
            _fail(db, run_id, PROCESS_FAILED)
            return "failed"
        if peer_failed:
            exc = EngineShutdown()  # the engine stops: a peer gone first is no failure
    try:
        raise exc
    except (EngineShutdown, KeyboardInterrupt):  # KeyboardInterrupt: ray.cancel at shutdown
        try:
            epoch = checkpoint_epoch(resume_path(settings, run_id))
        except InvalidCheckpoint:  # said when the next attempt loads it; here, only a log line
            epoch = None
        where = f"after epoch {epoch}" if epoch else "from the start"
        if run_writes.requeue_run(db, run_id):
            log.info("engine stopping: run requeued; it resumes %s on the next start", where)
            return "queued"
        # Someone settled it first (a cancel, a status check that found it silent): say what
        # it is, in the run's log, rather than report a failure nobody recorded.
        now = run_store.get_run(db, run_id)
        status = now.status if now is not None else "deleted"
        log.warning("engine stopping: run not requeued: it is already %s", status)
        return status
    except SeedlabError as exc:
        _fail(db, run_id, str(exc))
    except torch.OutOfMemoryError:
        traceback.print_exc()
        _fail_out_of_memory(db, run_id, run.config)
    except Exception as exc:  # any bug must still end as a readable `failed`
        traceback.print_exc()
        if "out of memory" in str(exc).lower():  # CUDA/cuDNN errors that are not OutOfMemoryError
            _fail_out_of_memory(db, run_id, run.config)
        else:
            _fail(
                db,
                run_id,
                f"Unexpected error: {type(exc).__name__}: {exc}. "
                "The run's log has the full traceback.",
            )
    return "failed"


def _device_text(choice) -> str:  # noqa: ANN001
    """The device as the run records it: the worker's physical GPU index and name (the runner
    sees its one GPU as cuda:0) with the precision."""
    label = os.environ.get("SEEDLAB_DEVICE_LABEL")
    if choice.device.type != "cuda" or not label:
        text = choice.description
    else:
        precision = choice.description.rsplit(", ", 1)[-1].rstrip(")")
        named = label.endswith(")")
        text = f"{label.rstrip(')')}, {precision})" if named else f"{label} {precision}"
    node = os.environ.get("SEEDLAB_RAY_NODE")
    # "ray …" first: the Engine page matches a run to a worker's device by the first word.
    return f"ray {text} on node {node}" if node else text


def _fail_out_of_memory(db, run_id: int, config: dict) -> None:  # noqa: ANN001
    batch = int(config.get("batch_size") or 0)
    _fail(
        db,
        run_id,
        f"Out of memory on the device with batch_size={batch}. "
        f"Try batch_size={max(1, batch // 2)} (or a smaller model).",
    )


def _warm_up() -> None:
    """The first step of a small model on the CPU, so the kernels a run's first steps need are
    loaded and their first-call setup done before there is a run to wait for. Never CUDA: the
    spare must not take GPU memory while it waits."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.AdamW(model.parameters(), fused=True)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 8)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()


def serve_one() -> int:
    """A spare runner's life: warm up, wait for one run id on stdin, run it, exit."""
    try:
        _warm_up()
    except Exception:  # noqa: BLE001 - a cold kernel is slower, never wrong: run anyway
        traceback.print_exc()
    # Read by bench/bench_engine.py (and a person) to know the spare is ready.
    print(f"spare runner {os.getpid()} ready", flush=True)
    line = sys.stdin.readline().strip()
    if not line:
        return 0  # the worker closed our stdin: it stopped, or this spare is not needed
    if not line.isdigit():
        print(f"spare runner: expected a run id on stdin, got {line[:40]!r}", file=sys.stderr)
        return 2
    run_id = int(line)
    # From here on this process is the run's runner: its output goes to the run's log, as a
    # runner the worker starts for the run writes there from its first line.
    path = log_path(Settings.from_env(), run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with path.open("ab") as log_file, open(os.devnull, "rb") as nothing:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        os.dup2(nothing.fileno(), 0)
    return main([str(run_id)])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--spare"]:
        return serve_one()
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m engine.execution.runner RUN_ID", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    created = ddp.start_group()  # one of several processes under torchrun
    try:
        status = execute(Settings.from_env(), int(args[0]))
    finally:
        ddp.end_group(created)
    return 0 if status in ("completed", "cancelled", "queued") else 1


if __name__ == "__main__":
    raise SystemExit(main())
