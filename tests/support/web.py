"""A real `seedlab dashboard` (or `streamlit run dashboard/web.py`) on a free port, for tests
that talk to it over HTTP and its websocket as a browser does."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.commands import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    home: Path
    proc: subprocess.Popen


def start_server(cmd: list[str], env: dict[str, str], home: Path) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        cmd + _port_args(cmd, port),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return Server(url, home, proc)
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise AssertionError(
        f"the dashboard did not come up:\n{proc.stdout.read() if proc.stdout else ''}"
    )


def _port_args(cmd: list[str], port: int) -> list[str]:
    if "streamlit" in cmd:
        return ["--server.port", str(port), "--server.address", "localhost"]
    return ["--port", str(port)]


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def page_elements(url: str, cookie: str | None = None) -> tuple[str, set[str]]:
    """Ask the server for one run of the default page, as the browser does (sending `cookie`
    when given); how the run finished, and the kinds of element it drew."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.asyncio.client import connect

    async def run() -> tuple[str, set[str]]:
        ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
        headers = {"Cookie": cookie} if cookie else {}
        async with connect(
            ws_url, subprotocols=["streamlit"], max_size=None, additional_headers=headers
        ) as ws:
            ask = BackMsg()
            ask.rerun_script.query_string = ""
            ask.rerun_script.page_script_hash = ""
            await ws.send(ask.SerializeToString())
            elements: set[str] = set()
            while True:
                msg = ForwardMsg()
                msg.ParseFromString(await asyncio.wait_for(ws.recv(), 60))
                kind = msg.WhichOneof("type")
                if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    elements.add(msg.delta.new_element.WhichOneof("type"))
                elif kind == "script_finished":
                    status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                    return status, elements

    return asyncio.run(run())
