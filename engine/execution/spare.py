"""The warm runner: one runner process the worker starts ahead of its run.

About 3 to 5 s of every run used to be its runner's start-up (Python, torch and the engine
imported before the first batch). The worker keeps one spare runner
(`python -m engine.execution.runner --spare`) started and waiting, and hands it the next run it
starts on the spare's device: the run begins training at once. A spare serves ONE run and exits
with it, so a crash still ends one run only; the worker then starts a new spare.

The device is fixed before CUDA starts: a spare is started with the full environment of one
slot (CUDA_VISIBLE_DEVICES, its thread share, …), the slot an `auto` run would get next, and is
used only for a run whose environment is exactly that one; any other run (another GPU, a
data-parallel run under torchrun) starts cold as before. A spare is only kept while its slot
has room for a run, so on a one-run CPU it never competes with a run in progress for the
cores; it starts as the run ends.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.core.paths import PROJECT_ROOT
from engine.core.run_files import tail

log = logging.getLogger("seedlab.worker")

# A spare that dies before it is used this many times in a row (a broken install, too little
# memory) turns warm start off for this worker: its runs start cold, as they always could.
MAX_SPARE_FAILURES = 3


def spare_command() -> list[str]:
    return [sys.executable, "-m", "engine.execution.runner", "--spare"]


@dataclass
class Spare:
    process: subprocess.Popen
    slot_key: str
    env: dict[str, str]


class SparePool:
    """At most one spare runner, for one slot's environment."""

    def __init__(self, log_file: Path, enabled: bool = True) -> None:
        self.log_file = log_file  # the spare's own output until it has a run (start-up errors)
        self.enabled = enabled
        self.spare: Spare | None = None
        self.failures = 0
        self.used = 0

    def keep(self, slot_key: str | None, env: dict[str, str] | None) -> None:
        """Have a spare for this slot's environment (None: no slot has room, keep what is)."""
        self._check_alive()
        if not self.enabled or slot_key is None or env is None:
            return
        if self.spare is not None:
            if self.spare.env == env:
                return
            self.stop()  # the next run goes elsewhere now: a spare for there instead
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as output:
            process = subprocess.Popen(
                spare_command(),
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,  # as a cold runner: a Ctrl-C reaches the worker only
            )
        self.spare = Spare(process, slot_key, env)

    def take(self, env: dict[str, str], run_id: int) -> subprocess.Popen | None:
        """The spare, now running `run_id`, if it was started with exactly `env`; else None
        (the caller starts a cold runner)."""
        self._check_alive()
        spare = self.spare
        if spare is None or spare.env != env:
            return None
        self.spare = None
        try:
            assert spare.process.stdin is not None
            spare.process.stdin.write(f"{run_id}\n".encode())
            spare.process.stdin.close()
        except OSError:  # it died just now: the run starts cold
            spare.process.kill()
            spare.process.wait()
            return None
        self.failures = 0
        self.used += 1
        return spare.process

    def stop(self) -> None:
        """End the waiting spare (closing its stdin ends it; terminate if it is still loading)."""
        spare, self.spare = self.spare, None
        if spare is None:
            return
        try:
            assert spare.process.stdin is not None
            spare.process.stdin.close()
        except OSError:
            pass
        if spare.process.poll() is None:
            spare.process.terminate()
        try:
            spare.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            spare.process.kill()
            spare.process.wait()

    def _check_alive(self) -> None:
        if self.spare is None or self.spare.process.poll() is None:
            return
        code = self.spare.process.returncode
        self.spare = None
        self.failures += 1
        detail = tail(self.log_file, lines=5)
        log.warning(
            "the spare runner exited (code %s) before it had a run%s",
            code,
            f"; its last lines:\n{detail}" if detail else "",
        )
        if self.failures >= MAX_SPARE_FAILURES:
            self.enabled = False
            log.warning(
                "warm start is off for this worker after %d spare runners failed; runs start "
                "cold (see %s)",
                self.failures,
                self.log_file,
            )
