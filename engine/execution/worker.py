"""The engine worker: `seedlab worker` / `python -m engine.execution.worker`.

Polls for queued runs, claims them atomically, starts one subprocess per run (so a crash kills
one run, never the worker) on a device slot (a cap per GPU and one for the CPU; a GPU run sees
only its GPU through CUDA_VISIBLE_DEVICES), beats a heartbeat with its devices' load, enforces
cancels a runner does not honour, and makes sure no run stays `running` after its process is
gone: a stale run with a checkpoint is requeued to resume, one without is failed.

A run starts on a warm runner when one is ready for its device (engine/execution/spare.py): a
runner process started ahead with torch imported, used for that one run only.

Shutdown (SIGTERM, Ctrl-C) asks each runner to stop; a runner then puts its run back in the
queue, so the next engine start resumes it from its last epoch instead of failing it.

With `--executor ray` the runs are Ray tasks on a cluster instead of local subprocesses
(executors/ray_executor.py); claiming, cancels, reaping and recovery stay here, unchanged.

Jobs (export, compression, importance queued from a page, table `jobs`) are claimed here too and
run one at a time, each in its own process (job_runner.py), beside the runs: they take no run
slot, so a long export never holds back training, and a run never holds back an export. A job
runs on this machine's CPU (with Ray too) with a share of the cores. A job whose process dies is
failed with how it ended; at shutdown running jobs are stopped and requeued (they start over on
the next engine start); jobs left `running` by a worker that vanished are failed by the next
one, saying so.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import typer

from db import jobs as job_store
from db import runs as run_store
from db.migrate import upgrade_to_head
from db.session import get_db
from db.writes import jobs as job_writes
from db.writes import runs as run_writes
from db.writes import workers as worker_writes
from engine.core.errors import SeedlabError
from engine.core.paths import PROJECT_ROOT
from engine.core.run_files import append_log_line, log_path, tail
from engine.core.settings import Settings
from engine.execution.devices import detect_devices
from engine.execution.executors.torchrun import processes_of, runner_command, thread_share
from engine.execution.job_runner import job_log_path
from engine.execution.scheduling import Slot, assign_slot, free_requests, total_slots
from engine.execution.spare import SparePool
from engine.execution.stop_marker import mark_engine_stopping
from engine.execution.worker_options import WorkerOptions, worker_command
from engine.services.alert_delivery import ALERT_PASS_S, drain_once
from engine.services.alerts import notify_run_ended
from engine.services.recovery import heartbeat_timeout_s, settle_stale_runs
from engine.services.sweeps import advance_all as advance_sweeps

log = logging.getLogger("seedlab.worker")


# GPU memory and utilization are refreshed this often (nvidia-smi costs ~50 ms).
DEVICE_REFRESH_S = 5.0
# A runner that ignores a cancel for this long is terminated.
CANCEL_GRACE_S = 10.0
# Runners get this long to exit after SIGTERM at shutdown before SIGKILL.
SHUTDOWN_GRACE_S = 10.0
# Jobs at once per worker, beside the runs (they take no run slot).
JOB_CAP = 1
# A job still running after this long is stopped and failed (the page used to give up at 10 min).
JOB_TIME_LIMIT_S = 30 * 60
# How often the worker looks for jobs left `running` by a worker that is gone.
ORPHAN_CHECK_S = 10.0
ORPHANED_JOB_ERROR = (
    "The engine stopped while this job ran (its worker was killed or its machine restarted); "
    "request it again."
)


@dataclass
class ActiveRun:
    run_id: int
    process: Any  # subprocess.Popen, or a RayRun that answers the same calls
    slot: Slot = field(default_factory=lambda: Slot("cpu"))
    request: Any = None  # what a Ray run reserved on the cluster (ray_executor.Request)
    started: float = field(default_factory=time.monotonic)
    cancel_seen_at: float | None = None
    terminated_for_cancel: bool = False


@dataclass
class ActiveJob:
    job_id: int
    run_id: int
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    timed_out: bool = False


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = (
            " (often the system killing it for using too much memory)" if name == "SIGKILL" else ""
        )
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        max_concurrent: int = 1,
        poll_interval: float = 0.5,
        stale_after_s: float | None = None,
        gpu_cap: int = 1,
        executor: str = "local",
        ray_address: str = "auto",
        warm_runner: bool = True,
    ) -> None:
        if max_concurrent < 1 or gpu_cap < 1:
            raise ValueError("the CPU cap (max_concurrent) and gpu_cap must be at least 1")
        if executor not in ("local", "ray"):
            raise ValueError(f"unknown executor {executor!r}: local or ray")
        self.settings = settings
        self.executor = executor
        self.ray_address = ray_address
        self.ray: Any = None  # the RayExecutor, connected in run_forever
        self.db = get_db(settings)
        self.max_concurrent = max_concurrent  # runs at once on the CPU
        self.gpu_cap = gpu_cap  # runs at once on each GPU
        self.poll_interval = poll_interval
        # A running run owned by no live process of ours is settled after this long without a
        # heartbeat (runners beat every ~1 s while training).
        self.stale_after_s = stale_after_s or heartbeat_timeout_s()
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.active: dict[int, ActiveRun] = {}
        self.jobs: dict[int, ActiveJob] = {}
        self._orphans_checked_at = 0.0
        self.devices: list[dict] = []
        self._devices_at = 0.0
        self._stopping = False
        # One runner started ahead (not with Ray, whose tasks start on the cluster).
        self.spares = SparePool(
            settings.home / "spare-runner.log", enabled=warm_runner and executor == "local"
        )
        # Alerts are sent from a thread of their own: a webhook that hangs for its whole
        # timeout never delays a claim, a reap or a heartbeat (engine/services/alert_delivery.py).
        self._alerts_stop = threading.Event()
        self._alerts_thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def request_stop(self, *_args: object) -> None:
        self._stopping = True

    def run_forever(self) -> None:
        self.settings.ensure_dirs()
        upgrade_to_head(self.db)
        if self.executor == "ray":
            from engine.execution.executors.ray_executor import RayExecutor

            self.ray = RayExecutor(self.settings, self.ray_address)
        self._refresh_devices()
        slots = (
            int(self.ray.totals().get("CPU", 1))
            if self.ray
            else total_slots(self.devices, gpu_cap=self.gpu_cap, cpu_cap=self.max_concurrent)
        )
        worker_writes.register_worker(
            self.db,
            self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            max_concurrent=slots,
            devices=self.devices,
        )
        gpus = [f"cuda:{d['index']} {d['name']}" for d in self.devices if d["kind"] == "cuda"]
        if self.ray:
            where = self.devices[0]["name"]
        else:
            where = f"CPU cap {self.max_concurrent}; " + (
                f"GPU cap {self.gpu_cap} on {', '.join(gpus)}" if gpus else "no GPU"
            )
        log.info("worker %s started (%s; home %s)", self.worker_id, where, self.settings.home)
        self._alerts_thread = threading.Thread(
            target=self._send_alerts, name="seedlab-alerts", daemon=True
        )
        self._alerts_thread.start()
        try:
            while not self._stopping:
                self.poll_once()
                time.sleep(self.poll_interval)
        finally:
            self.shutdown()

    def _send_alerts(self) -> None:
        """The alert thread: a pass over the outbox every ALERT_PASS_S until shutdown. A pass
        that fails (the database busy, a bug) is logged and the next one tries again."""
        while not self._alerts_stop.wait(ALERT_PASS_S):
            try:
                drain_once(self.db, self.settings)
            except Exception:
                log.exception("alert pass failed; trying again in %.0f s", ALERT_PASS_S)

    def _run_ended(self, run_id: int) -> None:
        """Alerts for a run whose process is gone (it completed, failed or was cancelled; a
        requeued run enqueues nothing). Never raises: an alert never fails the engine."""
        notify_run_ended(self.db, self.settings, run_id)

    def shutdown(self) -> None:
        self._stopping = True
        self._alerts_stop.set()
        self.spares.stop()
        for active in self.active.values():
            if active.process.poll() is None:
                if isinstance(active.process, subprocess.Popen):  # torchrun's ranks read it
                    mark_engine_stopping(self.settings.run_dir(active.run_id), active.process.pid)
                active.process.terminate()
        for job in self.jobs.values():
            if job.process.poll() is None:
                job.process.terminate()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        for active in [*self.active.values(), *self.jobs.values()]:
            try:
                active.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                active.process.kill()
                active.process.wait()
        self._wait_for_ray_runs_to_settle(deadline)
        self._reap()
        self._reap_jobs()
        worker_writes.mark_stopped(self.db, self.worker_id)
        if self.ray:
            self.ray.close()
        log.info("worker %s stopped", self.worker_id)

    # ------------------------------------------------------------ one poll

    def _refresh_devices(self) -> bool:
        if time.monotonic() - self._devices_at < DEVICE_REFRESH_S and self.devices:
            return False
        self.devices = self.ray.devices() if self.ray else detect_devices()
        self._devices_at = time.monotonic()
        return True

    def load(self) -> dict[str, int]:
        """Runs in progress per slot key ('cpu', 'cuda:0' …)."""
        counts: dict[str, int] = {}
        for active in self.active.values():
            counts[active.slot.key] = counts.get(active.slot.key, 0) + 1
        return counts

    def poll_once(self) -> None:
        refreshed = self._refresh_devices()
        worker_writes.beat(self.db, self.worker_id, devices=self.devices if refreshed else None)
        self._reap()
        self._enforce_cancels()
        self._settle_stale()
        # Sweeps queue their next trials here: the worker is their only writer.
        advance_sweeps(self.db)
        self._poll_jobs()
        if self.ray:
            self._claim_for_ray()
            return
        while not self._stopping:
            caps = {"gpu_cap": self.gpu_cap, "cpu_cap": self.max_concurrent}
            wanted = free_requests(self.devices, self.load(), **caps)
            if not wanted:
                break
            run_id = run_writes.claim_next_run(self.db, self.worker_id, devices=wanted)
            if run_id is None:
                break
            run = run_store.get_run(self.db, run_id)
            requested = str((run.config if run else {}).get("device", "auto"))
            slot = assign_slot(requested, self.devices, self.load(), **caps) or Slot("cpu")
            processes = processes_of(run.config if run else {})
            recipe = run is not None and run.source == "recipe"
            attempts = run.attempts if run else 0
            self._spawn(run_id, slot, attempts=attempts, processes=processes, recipe=recipe)
        self._keep_spare()

    def _keep_spare(self) -> None:
        """A spare runner for the slot an `auto` run would get now; none while every slot is
        full (it would only take cores from the runs in progress)."""
        if self._stopping:
            return
        caps = {"gpu_cap": self.gpu_cap, "cpu_cap": self.max_concurrent}
        slot = assign_slot("auto", self.devices, self.load(), **caps)
        self.spares.keep(slot.key if slot else None, self._run_env(slot) if slot else None)

    def _device_label(self, slot: Slot) -> str:
        if slot.kind == "cpu":
            return "cpu"
        name = next(
            (d["name"] for d in self.devices if d["kind"] == "cuda" and d["index"] == slot.index),
            "GPU",
        )
        return f"cuda:{slot.index} ({name})"

    def _claim_for_ray(self) -> None:
        """Claim runs while the cluster has room for them, and submit each as a Ray task."""
        while not self._stopping:
            in_use = [a.request for a in self.active.values() if a.request is not None]
            wanted = self.ray.free_requests(in_use)
            if not wanted:
                return
            run_id = run_writes.claim_next_run(self.db, self.worker_id, devices=wanted)
            if run_id is None:
                return
            run = run_store.get_run(self.db, run_id)
            request = self.ray.request_for(run.config if run else {})
            problem = self.ray.infeasible(request)
            if problem:
                run_writes.finish_run(self.db, run_id, "failed", problem)
                log.warning("run %s: %s", run_id, problem)
                self._run_ended(run_id)
                continue
            self._note_attempt(run_id, run.attempts if run else 0, "Ray")
            handle = self.ray.start(run_id, request)
            run_writes.mark_started(
                self.db, run_id, pid=0, device=f"ray (waiting for {request.describe()})"
            )
            self.active[run_id] = ActiveRun(run_id, handle, Slot("ray"), request=request)
            log.info("run %s submitted to Ray (%s)", run_id, request.describe())

    def _note_attempt(self, run_id: int, attempts: int, where: str) -> None:
        """A line in the run's log where a resumed attempt starts."""
        if attempts:
            append_log_line(
                self.settings, run_id, f"--- attempt {attempts + 1} (resume) on {where} ---"
            )

    def _run_env(self, slot: Slot, processes: int = 1) -> dict[str, str]:
        env = self.settings.child_env()
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        # The run sees only its GPU (none for a CPU slot), numbered as nvidia-smi numbers them.
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = slot.visible_devices()
        env["SEEDLAB_DEVICE_LABEL"] = self._device_label(slot)
        # The runner watches this pid: if its worker dies it requeues its run and exits, so no
        # run trains on unsupervised (uncapped, uncancellable) after a worker was SIGKILLed.
        env["SEEDLAB_WORKER_PID"] = str(os.getpid())
        if slot.kind == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            # Share the cores among the CPU runs: oversubscribed threads made a small MLP ~20x
            # slower on a busy 2-core machine.
            cores = os.cpu_count() or 1
            env["OMP_NUM_THREADS"] = str(thread_share(cores, self.max_concurrent, processes))
        # OpenMP threads that wait by sleeping, not spinning: on a machine busy with other work
        # (other runs, the dashboard, a shared box) spinning threads fight for the cores, and 60
        # epochs of a small MLP took 71 s with 2 spinning threads against 15 s with passive ones.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return env

    def _spawn(
        self, run_id: int, slot: Slot, attempts: int = 0, processes: int = 1, recipe: bool = False
    ) -> None:
        path = log_path(self.settings, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = self._run_env(slot, processes)
        self._note_attempt(run_id, attempts, slot.key)
        # The warm runner when it was started for exactly this environment (device included);
        # a recipe's supervisor imports no torch, so it needs none.
        process = self.spares.take(env, run_id) if processes == 1 and not recipe else None
        warm = process is not None
        if process is None:
            with path.open("ab") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "engine.execution.recipe_runner", str(run_id)]
                    if recipe
                    else runner_command(run_id, processes),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=PROJECT_ROOT,
                    # Own session: a Ctrl-C in the terminal reaches the worker, which then stops
                    # its runs in order, instead of killing them mid-write.
                    start_new_session=True,
                )
        run_writes.mark_started(self.db, run_id, pid=process.pid, device=self._device_label(slot))
        self.active[run_id] = ActiveRun(run_id, process, slot)
        log.info(
            "run %s started on %s (pid %s, %s runner)",
            run_id,
            slot.key,
            process.pid,
            "warm" if warm else "new",
        )

    def _wait_for_ray_runs_to_settle(self, deadline: float) -> None:
        """A cancelled Ray task's result is ready before its process has stopped training.

        Without this wait the engine could exit (and requeue the run) while the task still
        writes one more epoch and checkpoint, so the next engine would resume a run that is
        still training elsewhere. The runner requeues the run itself when it stops, so its
        status leaving "running" is the sign, on whichever node the task ran.
        """
        ray_runs = [
            run_id
            for run_id, active in self.active.items()
            if not isinstance(active.process, subprocess.Popen)
        ]
        while ray_runs and time.monotonic() < deadline:
            ray_runs = [
                run_id
                for run_id in ray_runs
                if (run := run_store.get_run(self.db, run_id)) is not None
                and run.status == "running"
            ]
            if ray_runs:
                time.sleep(0.1)

    def _reap(self) -> None:
        """Runs whose process ended: if it left the run active, say why it failed."""
        for run_id, active in list(self.active.items()):
            code = active.process.poll()
            if code is None:
                continue
            del self.active[run_id]
            if active.terminated_for_cancel:
                if run_writes.finish_run(self.db, run_id, "cancelled"):
                    log.info("run %s cancelled (terminated after ignoring the request)", run_id)
                self._run_ended(run_id)
                continue
            if self._stopping:
                # Shut down before its runner could requeue it: resume on the next start.
                if run_writes.requeue_run(self.db, run_id, worker_id=self.worker_id):
                    log.info("run %s requeued: the engine is shutting down", run_id)
                else:  # its runner requeued or finished it first: its word stands
                    log.info("run %s not requeued at shutdown: its runner settled it", run_id)
                continue
            log_tail = tail(log_path(self.settings, run_id), lines=15)
            ended = getattr(active.process, "describe_exit", _describe_exit)(code)
            message = f"The run's process {ended} before the run finished."
            if log_tail:
                message += "\nLast lines of its log:\n" + log_tail
            if run_writes.fail_running_run(
                self.db, run_id, worker_id=self.worker_id, error=message
            ):
                log.warning("run %s: %s", run_id, message.splitlines()[0])
            else:
                log.info("run %s finished (process %s)", run_id, _describe_exit(code))
            self._run_ended(run_id)

    # ------------------------------------------------------------ jobs

    def _poll_jobs(self) -> None:
        """Reap finished jobs, stop overdue ones, fail orphans, start queued ones."""
        self._reap_jobs()
        now = time.monotonic()
        for job in self.jobs.values():
            if not job.timed_out and now - job.started > JOB_TIME_LIMIT_S:
                log.warning("job %s ran past %d s; stopping it", job.job_id, JOB_TIME_LIMIT_S)
                job.timed_out = True
                job.process.kill()
        if now - self._orphans_checked_at > ORPHAN_CHECK_S:
            self._orphans_checked_at = now
            failed = job_writes.fail_orphaned_jobs(
                self.db, alive_within_s=self.stale_after_s, error=ORPHANED_JOB_ERROR
            )
            for job_id in failed:
                log.warning("job %s failed: its worker is gone", job_id)
        while not self._stopping and len(self.jobs) < JOB_CAP:
            job_id = job_writes.claim_next_job(self.db, self.worker_id)
            if job_id is None:
                return
            self._spawn_job(job_id)

    def _job_env(self) -> dict[str, str]:
        env = self.settings.child_env()
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        # On the CPU (export checks and latency are CPU measurements), with a share of the cores
        # as if it were one more CPU run, so it neither starves the runs nor crawls.
        env["CUDA_VISIBLE_DEVICES"] = ""
        if "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(thread_share(os.cpu_count() or 1, self.max_concurrent + 1))
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return env

    def _spawn_job(self, job_id: int) -> None:
        job = job_store.get_job(self.db, job_id)
        if job is None:  # its run was deleted (and the job with it) just after the claim
            return
        path = job_log_path(self.settings, job.run_id, job_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "engine.execution.job_runner", str(job_id)],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self._job_env(),
                    cwd=PROJECT_ROOT,
                    start_new_session=True,  # as runs: a Ctrl-C reaches the worker only
                )
        except OSError as exc:
            job_writes.finish_job(
                self.db,
                job_id,
                "failed",
                error=f"The engine could not start the job ({exc}); check the run's folder "
                f"{path.parent.parent} is writable, then request it again.",
            )
            return
        job_writes.mark_started(self.db, job_id, pid=process.pid)
        self.jobs[job_id] = ActiveJob(job_id, job.run_id, process)
        log.info("job %s (%s, run %s) started (pid %s)", job_id, job.kind, job.run_id, process.pid)

    def _reap_jobs(self) -> None:
        """Jobs whose process ended: if it left the job running, fail it saying why."""
        for job_id, job in list(self.jobs.items()):
            code = job.process.poll()
            if code is None:
                continue
            del self.jobs[job_id]
            if self._stopping and not job.timed_out:
                if job_writes.requeue_job(self.db, job_id, worker_id=self.worker_id):
                    log.info("job %s requeued: the engine is shutting down", job_id)
                continue
            if job.timed_out:
                message = (
                    f"It ran longer than {JOB_TIME_LIMIT_S // 60} minutes and was stopped; "
                    "for a long one use the CLI (`seedlab runs export` / `runs compress`), "
                    "which has no limit."
                )
            else:
                message = f"The job's process {_describe_exit(code)} before the job finished."
                log_tail = tail(job_log_path(self.settings, job.run_id, job_id), lines=15)
                if log_tail:
                    message += "\nLast lines of its log:\n" + log_tail
            if job_writes.finish_job(
                self.db, job_id, "failed", error=message, worker_id=self.worker_id
            ):
                log.warning("job %s: %s", job_id, message.splitlines()[0])
            else:
                log.info("job %s finished (process %s)", job_id, _describe_exit(code))

    def _enforce_cancels(self) -> None:
        requested = run_store.cancel_requested_ids(self.db, self.active)
        now = time.monotonic()
        for run_id in requested:
            active = self.active[run_id]
            if active.cancel_seen_at is None:
                active.cancel_seen_at = now
            elif now - active.cancel_seen_at > CANCEL_GRACE_S and not active.terminated_for_cancel:
                log.warning(
                    "run %s ignored its cancel for %.0f s; terminating it", run_id, CANCEL_GRACE_S
                )
                active.terminated_for_cancel = True
                active.process.kill()

    def _settle_stale(self) -> None:
        """Running runs with no live process of ours and no recent heartbeat (their worker
        was killed, or the machine restarted) are requeued to resume from their checkpoint,
        or failed when they have none, so none stays `running` forever."""
        settle_stale_runs(
            self.settings, self.db, timeout_s=self.stale_after_s, exclude_ids=list(self.active)
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.execution.worker [OPTIONS]`: the options of `seedlab worker`, parsed by
    the same definition (engine/execution/worker_options.py)."""

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(worker_command(run_with_options))
    try:
        app(args=argv, prog_name="seedlab worker")
    except SeedlabError as exc:  # a bad SEEDLAB_* value: one line, as the CLI prints it
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_with_options(settings: Settings, options: WorkerOptions) -> None:
    """Run the worker until SIGTERM/SIGINT with the options of `seedlab worker`."""
    run_worker(
        settings,
        options.max_concurrent,
        options.poll_interval,
        options.gpu_cap,
        executor=options.executor,
        ray_address=options.ray_address,
        warm_runner=options.warm_runner,
    )


def run_worker(
    settings: Settings,
    max_concurrent: int = 1,
    poll_interval: float = 0.5,
    gpu_cap: int = 1,
    *,
    executor: str = "local",
    ray_address: str = "auto",
    warm_runner: bool = True,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    worker = Worker(
        settings,
        max_concurrent=max_concurrent,
        poll_interval=poll_interval,
        gpu_cap=gpu_cap,
        executor=executor,
        ray_address=ray_address,
        warm_runner=warm_runner,
    )
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    worker.run_forever()


if __name__ == "__main__":
    raise SystemExit(main())
