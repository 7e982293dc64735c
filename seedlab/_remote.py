"""Remote logging: SEEDLAB_URL + SEEDLAB_TOKEN send a run to a running Seedlab over HTTP.

The training code's lines go first to a spool file on this machine (as in every mode), and an
uploader thread here posts them to the server's API (/api/v1, dashboard/remote_api.py on the
server), in batches, numbered from the spool's first line. Whatever the server has not
confirmed stays on disk: when it does not answer (the dashboard restarting, the network gone a
while) the uploader waits and sends again from the first unconfirmed line, so training goes on
and the run catches up once the server is back. The server skips lines it already applied, so
sending a batch twice (its answer lost) writes it once.

On this machine, under SEEDLAB_SPOOL_DIR (default ~/.cache/seedlab/spool), one folder per run:
spool.jsonl, sent.json (what the server confirmed), artifacts/ (what `run.log_artifact`
copied, uploaded before the line that names it), checkpoints/, and `stop` once the server
asked the run to stop. The folder is removed once everything is sent. If the server is still
unreachable when the script ends (after SEEDLAB_UPLOAD_TIMEOUT_S, default 300 s), it stays, and

    python -m seedlab._remote FOLDER

sends the rest later (with SEEDLAB_TOKEN set).

Standard library only (urllib): the SDK must install into any training environment.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from seedlab._connect import Connection
from seedlab._run import SeedlabSDKError
from seedlab._sinks import SpoolSink

API = "/api/v1"
REQUEST_TIMEOUT_S = 15.0
# init() waits this long for the server to create the run (the run's id is known at once).
CONNECT_TIMEOUT_S = 30.0
# At the end of the script, how long to go on sending what is left before leaving it on disk.
UPLOAD_TIMEOUT_S = 300.0
MAX_LINES = 20_000
MAX_BYTES = 8 * 1024 * 1024
IDLE_POLL_S = 0.2  # how often a quiet uploader looks for new lines
STOP_POLL_S = 1.0  # with nothing to send, how often it asks whether a cancel was requested
RETRY_MAX_S = 5.0  # the longest wait between tries while the server does not answer
STATE = "sent.json"
SPOOL = "spool.jsonl"


def _env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Unreachable(Exception):
    """The server did not answer, or answered that it cannot now (5xx): try again later."""


class Refused(Exception):
    """The server answered no (4xx): sending again will not help. `status`, `body` say why."""

    def __init__(self, status: int, message: str, body: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Client:
    """The API's few calls, with the token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        data: Any = None,  # noqa: ANN401 - bytes, or an open file sent as it is read
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        sent.update(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{API}{path}", data=data, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read() or b"{}")
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            message = str(answer.get("error") or f"HTTP {exc.code} {exc.reason}")
            if exc.code >= 500 or (exc.code in (404, 405) and "error" not in answer):
                # A proxy's page while the server restarts, or a server without the API yet.
                raise Unreachable(message) from None
            raise Refused(exc.code, message, answer) from None
        except (OSError, ValueError) as exc:  # URLError, refused connection, timeout, bad JSON
            raise Unreachable(str(getattr(exc, "reason", exc))) from None

    def create_run(self, key: str, init: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/runs", {"key": key, "init": init})

    def send_lines(self, run_id: int, start: int, lines: list[Any]) -> dict[str, Any]:
        return self._call("POST", f"/runs/{run_id}/lines", {"start": start, "lines": lines})

    def upload(self, run_id: int, name: str, path: Path) -> None:
        quoted = urllib.parse.quote(name, safe="/")
        with path.open("rb") as fh:  # streamed: a model file need not fit in memory
            self._call(
                "PUT",
                f"/runs/{run_id}/artifacts/{quoted}",
                data=fh,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(os.fstat(fh.fileno()).st_size),
                },
            )

    def stop_flag(self, run_id: int) -> bool:
        return bool(self._call("GET", f"/runs/{run_id}/stop").get("stop"))


class Uploader:
    """Sends a run's spool to the server from where the server's count says, on a thread."""

    def __init__(self, client: Client, folder: Path, run_id: int, key: str, sent: int) -> None:
        self.client = client
        self.folder = folder
        self.run_id = run_id
        self.key = key
        self.spool = folder / SPOOL
        self.stop_file = folder / "stop"
        self.lines = sent  # lines the server confirmed (line 0 is the init line)
        self.offset = self._offset_of(sent)  # their bytes in the spool
        self.refused: str | None = None
        self.down_since: float | None = None
        self._closing = False
        self._wake = threading.Event()
        self._last_stop_poll = 0.0
        self._thread: threading.Thread | None = None

    # -- the spool ---------------------------------------------------------------------------

    def _offset_of(self, line_count: int) -> int:
        """The byte offset just after the first `line_count` lines of the spool."""
        offset = 0
        with self.spool.open("rb") as fh:
            for _ in range(line_count):
                line = fh.readline()
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
        return offset

    def _pending(self) -> list[bytes]:
        """Whole lines after the confirmed ones (at most MAX_LINES / MAX_BYTES)."""
        try:
            with self.spool.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read(MAX_BYTES)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            # A single line longer than MAX_BYTES: read it whole.
            if len(data) == MAX_BYTES:
                with self.spool.open("rb") as fh:
                    fh.seek(self.offset)
                    line = fh.readline()
                return [line] if line.endswith(b"\n") else []
            return []
        return data[: end + 1].splitlines(keepends=True)[:MAX_LINES]

    def all_sent(self) -> bool:
        try:
            return self.offset >= self.spool.stat().st_size
        except FileNotFoundError:
            return True

    def _save_state(self) -> None:
        state = {
            "url": self.client.url,
            "run_id": self.run_id,
            "key": self.key,
            "lines": self.lines,
        }
        tmp = self.folder / f".{STATE}.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.folder / STATE)

    # -- sending -----------------------------------------------------------------------------

    def _upload_artifacts(self, parsed: list[Any]) -> None:
        for line in parsed:
            if not isinstance(line, dict) or line.get("type") != "artifact":
                continue
            name = str(line.get("name") or "")
            path = self.folder / "artifacts" / name
            if not name or not path.exists():
                continue
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                relative = file.relative_to(self.folder / "artifacts").as_posix()
                try:
                    self.client.upload(self.run_id, relative, file)
                except Refused as exc:  # e.g. a name the server does not take: the rest goes on
                    _warn(f"seedlab: artifact {relative!r} was not uploaded: {exc}")

    def send_once(self) -> bool:
        """Send one batch; True if there was one. Raises Unreachable or Refused."""
        raw = self._pending()
        if not raw:
            return False
        parsed: list[Any] = []
        for line in raw:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                parsed.append(None)  # keeps the numbering; the server skips it
        self._upload_artifacts(parsed)
        try:
            answer = self.client.send_lines(self.run_id, self.lines, parsed)
        except Refused as exc:
            if exc.status == 409 and isinstance(exc.body.get("received"), int):
                # The server has fewer lines than this side thought: send again from there.
                self.lines = exc.body["received"]
                self.offset = self._offset_of(self.lines)
                return True
            raise
        received = int(answer.get("received", self.lines))
        if self.lines <= received <= self.lines + len(raw):
            self.offset += sum(len(line) for line in raw[: received - self.lines])
            self.lines = received
        else:
            self.lines = received
            self.offset = self._offset_of(received)
        self._save_state()
        if answer.get("stop"):
            self.stop_file.touch()
        return True

    def _poll_stop(self) -> None:
        now = time.monotonic()
        if now - self._last_stop_poll < STOP_POLL_S:
            return
        self._last_stop_poll = now
        if self.client.stop_flag(self.run_id):
            self.stop_file.touch()

    def _loop(self) -> None:
        delay = 0.5
        while self.refused is None:
            closing = self._closing
            try:
                if self.send_once():
                    progressed = True
                else:
                    progressed = False
                    if closing:
                        return
                    self._poll_stop()
                if self.down_since is not None:
                    _warn(f"seedlab: {self.client.url} answers again; run {self.run_id} caught up.")
                    self.down_since = None
                delay = 0.5
                if progressed:
                    continue
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
            except Unreachable as exc:
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    _warn(
                        f"seedlab: {self.client.url} does not answer ({exc}); training goes on and "
                        f"run {self.run_id}'s logs wait in {self.spool} until it is back."
                    )
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(RETRY_MAX_S, delay * 2)
            except Refused as exc:
                self.refused = str(exc)
                _warn(
                    f"seedlab: the server refused run {self.run_id}'s logs: {exc} They are kept "
                    f"in {self.spool}."
                )

    def start(self) -> Uploader:
        self._thread = threading.Thread(target=self._loop, name="seedlab-uploader", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout_s: float) -> bool:
        """Send what is left, for up to `timeout_s`; True if the server has it all. Else the
        folder stays, and the message says how to send it later."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.refused is None and self.all_sent() and not self._thread_alive():
            shutil.rmtree(self.folder, ignore_errors=True)
            return True
        self._closing = False  # a thread still trying goes on until the process exits
        _warn(
            f"seedlab: run {self.run_id} is not fully sent to {self.client.url} "
            f"({self.refused or 'it does not answer'}). What is left is kept in {self.folder}; "
            f"send it later with: python -m seedlab._remote {self.folder}"
        )
        return False

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class RemoteSink(SpoolSink):
    """The spool on this machine, and a nudge to the uploader after each batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.uploader: Uploader | None = None

    def write(self, lines: list[str]) -> None:
        super().write(lines)
        if self.uploader is not None:
            self.uploader.wake()


def spool_root() -> Path:
    named = os.environ.get("SEEDLAB_SPOOL_DIR")
    if named:
        return Path(named)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "seedlab" / "spool"


def _create(client: Client, key: str, init: dict[str, Any], wait_s: float) -> dict[str, Any]:
    """The server's run for `init`, trying until `wait_s` passes while it does not answer."""
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            return client.create_run(key, init)
        except Refused as exc:
            raise SeedlabSDKError(
                f"seedlab: {client.url} refused to create the run: {exc}"
            ) from None
        except Unreachable as exc:
            if time.monotonic() + delay > deadline:
                raise SeedlabSDKError(
                    f"seedlab: the Seedlab server at {client.url} does not answer ({exc}); "
                    f"tried for {wait_s:.0f} s. Check SEEDLAB_URL and that `seedlab up` runs "
                    f"there (or unset SEEDLAB_URL to log locally)."
                ) from None
            time.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)


def connect_remote(init: dict[str, Any]) -> Connection:
    """`seedlab.init()` with SEEDLAB_URL set: create the run on the server (waiting up to
    SEEDLAB_CONNECT_TIMEOUT_S while it does not answer), then log through the spool and the
    uploader."""
    url = os.environ.get("SEEDLAB_URL", "").strip()
    token = os.environ.get("SEEDLAB_TOKEN", "").strip()
    if not token:
        raise SeedlabSDKError(
            f"seedlab: SEEDLAB_URL is set ({url}) but SEEDLAB_TOKEN is not. Make a token on that "
            f"server (`seedlab users token YOUR_NAME`, or the dashboard's API tokens page) and "
            f"set SEEDLAB_TOKEN to it."
        )
    if not url.startswith(("http://", "https://")):
        raise SeedlabSDKError(
            f"seedlab: SEEDLAB_URL must start with http:// or https://; got {url!r} "
            f"(e.g. http://seedlab.example:8501)."
        )
    client = Client(url, token)
    key = secrets.token_hex(16)
    folder = spool_root() / key
    folder.mkdir(parents=True, exist_ok=True)
    sink = RemoteSink(folder / SPOOL)
    sink.write([json.dumps(init)])
    try:
        created = _create(
            client, key, init, _env_seconds("SEEDLAB_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S)
        )
    except BaseException:
        sink.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    run_id = int(created["id"])
    uploader = Uploader(client, folder, run_id, key, int(created.get("received", 1)))
    uploader._save_state()
    sink.uploader = uploader.start()
    (folder / "artifacts").mkdir(exist_ok=True)
    return Connection(
        run_id=run_id,
        sink=sink,
        run_dir=str(folder),
        stop_file=str(uploader.stop_file),
        checkpoint_dir=str(folder / "checkpoints"),
        resumed=False,
        on_close=lambda: uploader.close(_env_seconds("SEEDLAB_UPLOAD_TIMEOUT_S", UPLOAD_TIMEOUT_S)),
    )


def replay(folder: Path, token: str, url: str | None = None, timeout_s: float = 60.0) -> bool:
    """Send what a run's folder still holds (after a script ended with the server away)."""
    state = json.loads((folder / STATE).read_text())
    client = Client(url or state["url"], token)
    uploader = Uploader(client, folder, int(state["run_id"]), state["key"], int(state["lines"]))
    return uploader.start().close(timeout_s)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        _warn("usage: python -m seedlab._remote FOLDER   (with SEEDLAB_TOKEN set)")
        return 2
    token = os.environ.get("SEEDLAB_TOKEN", "").strip()
    if not token:
        _warn("seedlab: set SEEDLAB_TOKEN to a token of the server the run was logged to.")
        return 2
    folder = Path(argv[0])
    if not (folder / STATE).is_file():
        _warn(f"seedlab: {folder} holds no run left to send (no {STATE}).")
        return 2
    done = replay(folder, token, os.environ.get("SEEDLAB_URL") or None)
    if done:
        print(f"seedlab: sent; {folder} removed.")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
