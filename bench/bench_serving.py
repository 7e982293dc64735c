"""Served-model benchmark: predictions over HTTP from a real `seedlab models serve` process
(uvicorn), against the same predictions made in this process.

    python bench/bench_serving.py                    # prints the table
    python bench/bench_serving.py --write-results    # also updates its section of RESULTS.md
    python bench/bench_serving.py --quick            # smoke run

It trains a tiny iris model (tabular) and a tiny support_tickets model (text; embedding_bag, not
the default pretrained encoder, whose ~9 ms a text would be the whole figure) in a temp home,
registers each in production, serves it with `seedlab models serve NAME` on a free port (rate
limit lifted) and sends `--requests` POSTs of 1 row/text and of 100 over one kept-alive
connection, then the same with 4 client threads. Baselines, in this process on the same home:
`Predictor.outputs(encode(...))` (the model alone, what the Playground runs),
`ModelServer.authorize` + `answer` (what a request runs besides HTTP) and `ModelServer.predict`
(that plus the request-log write). Latency is
the client's wall time per request; p50/p95 over all requests of a row.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_metrics import RESULTS_PATH, replace_section  # noqa: E402
from bench.bench_remote import free_port, start_server  # noqa: E402

BEGIN, END = "<!-- bench_serving:begin -->", "<!-- bench_serving:end -->"
CLIENTS = 4


def _train(settings: Any, db: Any, dataset: str, **values: Any) -> int:  # noqa: ANN401
    from db.writes import runs as run_writes
    from engine.execution.runner import execute
    from engine.services.launch import submit_run

    run_id = submit_run(db, dataset, {"epochs": 2, "batch_size": 32, "seed": 0, **values})
    assert run_writes.claim_next_run(db, worker_id="bench") == run_id
    assert execute(settings, run_id) == "completed"
    return run_id


def _post_loop(port: int, path: str, token: str, body: bytes, n: int) -> list[float]:
    """`n` POSTs over one kept-alive connection; each one's wall time in ms."""
    conn = http.client.HTTPConnection("localhost", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status == 200, data[:300]
    conn.close()
    return times


def _concurrent(port: int, path: str, token: str, body: bytes, n: int) -> float:
    """Requests/s of CLIENTS threads sending n requests in all."""
    each = max(1, n // CLIENTS)
    threads = [
        threading.Thread(target=_post_loop, args=(port, path, token, body, each))
        for _ in range(CLIENTS)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return each * CLIENTS / (time.perf_counter() - t0)


def _in_process(n: int, work: Any, *args: Any) -> list[float]:  # noqa: ANN401
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        work(*args)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _model_alone(predictor: Any, inputs: Any) -> None:  # noqa: ANN401
    predictor.outputs(predictor.encode(inputs))


def _checked(server: Any, name: str, token: str, payload: dict) -> None:  # noqa: ANN401
    server.answer(server.authorize(name, token), payload)


def _pct(times: list[float], q: float) -> float:
    return float(np.percentile(times, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--no-text", action="store_true", help="the tabular model only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.no_text = 20, True
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        home = Path(tmp) / "home"
        os.environ["SEEDLAB_HOME"] = str(home)
        os.environ.pop("SEEDLAB_DB_URL", None)
        import torch

        from db.migrate import upgrade_to_head
        from db.session import get_db
        from engine.core.settings import Settings
        from engine.data.demo import demo_frames, register_demo_datasets
        from engine.services import serving
        from engine.services.model_registry import register_model
        from engine.services.permissions import cli_actor

        torch.set_num_threads(1)  # as the tests and a served process on a shared box
        settings = Settings.from_env()
        settings.ensure_dirs()
        db = get_db(settings)
        upgrade_to_head(db)
        register_demo_datasets(settings, db, images=False)
        frames = demo_frames()
        iris, iris_target = frames["iris"]
        tickets, tickets_target = frames["support_tickets"]
        cases = [("iris", "iris", {}, "rows")]
        if not args.no_text:
            text_model = {"model": "embedding_bag", "max_length": 32}
            cases.append(("tickets", "support_tickets", text_model, "texts"))
        for name, dataset, values, key in cases:
            run_id = _train(settings, db, dataset, **values)
            register_model(settings, db, run_id, name, stage="production")
            token = serving.enable(db, cli_actor(), name)
            assert token is not None
            server = serving.ModelServer(settings, db, rate_per_min=10**9)
            target = server.authorize(name, token, count=False)
            predictor = server.loaded(target).predictor
            for size in (1, 100):
                if key == "rows":
                    sample = iris.drop(columns=[iris_target]).head(size)
                    items: list[Any] = sample.to_dict(orient="records")
                    model_input: Any = sample
                else:
                    items = tickets.drop(columns=[tickets_target]).iloc[:size, 0].tolist()
                    model_input = items
                payload = {key: items}
                body = json.dumps(payload).encode()
                model = _in_process(args.requests, _model_alone, predictor, model_input)
                local = _in_process(args.requests, _checked, server, name, token, payload)
                logged = _in_process(args.requests, server.predict, name, token, payload)
                port = free_port()
                proc = start_server(
                    home,
                    port,
                    ["models", "serve", name, "--port", str(port)],
                    SEEDLAB_SERVE_RATE_PER_MIN="1000000000",
                )
                try:
                    path = f"/api/v1/models/{name}/predict"
                    _post_loop(port, path, token, body, 5)  # the server loads the model
                    http_times = _post_loop(port, path, token, body, args.requests)
                    rate = _concurrent(port, path, token, body, args.requests)
                finally:
                    os.killpg(proc.pid, signal.SIGINT)
                    proc.wait(30)
                base = statistics.median(local)
                print(f"{name} x{size}: done", file=sys.stderr, flush=True)
                rows.append(
                    f"| {name} ({key}) | {size} | {_pct(model, 50):.2f} | "
                    f"{_pct(local, 50):.2f} / {_pct(local, 95):.2f} | {_pct(logged, 50):.2f} | "
                    f"{_pct(http_times, 50):.2f} / {_pct(http_times, 95):.2f} | "
                    f"{_pct(http_times, 50) / base:.1f}x | "
                    f"{1000 / statistics.mean(http_times):,.0f} | {rate:,.0f} |"
                )
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    section = "\n".join(
        [
            BEGIN,
            "## Served models: predictions over HTTP vs in this process",
            "",
            f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
            f"{os.cpu_count()} CPUs; load average (1/5/15 min) before {load_before}, after "
            f"{load_after} (other jobs share the machine: the figures are indicative).",
            f"- command: `python bench/bench_serving.py --write-results` ({args.requests} "
            f"requests per row; concurrent: {CLIENTS} client threads). Server: `seedlab models "
            "serve NAME` (uvicorn) on localhost, SQLite; torch with 1 thread in both.",
            "- model alone: `Predictor.outputs(encode(x))` in this process; in-process: "
            "`ModelServer.authorize` + `answer` (token and production checks, rate limit, JSON "
            "rows to the model's input, model), what a request runs besides HTTP; + log write: "
            "`ModelServer.predict`, which also writes the request-log row; HTTP: a kept-alive "
            "connection, client wall time.",
            "",
            "| model | items per request | model alone p50 ms | in-process p50 / p95 ms | "
            "in-process + log write p50 ms | HTTP p50 / p95 ms | HTTP p50 vs in-process | "
            f"HTTP req/s, 1 client | HTTP req/s, {CLIENTS} clients |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "- Over HTTP the request log is written after the answer is sent (a background "
            "task), so it is not in the client's latency.",
            END,
        ]
    )
    print(section)
    if args.write_results:
        replace_section(RESULTS_PATH, BEGIN, END, section)


if __name__ == "__main__":
    main()
