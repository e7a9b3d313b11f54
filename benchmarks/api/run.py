"""API benchmark: events accepted per second through ``POST /api/v1/events`` (one event per
request, and batches) beside a webhook (``POST /hooks/<source>/``, scheme ``none``) in one run,
and ``GET /api/v1/runs`` latency on a large runs table.

``python benchmarks/api/run.py --database-url postgresql://.../db --runs 1000000`` (a database of
its own: the script migrates it, fills it and leaves the rows). wrk drives one uvicorn process
(``automate serve``) for ``--seconds`` per variant; the events counted are those in the database
afterwards (every 2xx answered was committed before its answer). Latency: ``--samples`` sequential
requests per query with httpx, p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AUTOMATE = str(Path(sys.executable).with_name("automate"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count(url: str, source: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM automate_event WHERE source = %s", (source,)).fetchone()
        return int(row[0]) if row else 0


def wrk(target: str, body: str, auth: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(body)
    env = {**os.environ, "BODY_FILE": f.name, "AUTH": auth}
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / "post.lua"),
            target,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "p50_ms": float(p50[1]) * scale[p50[2]] if p50 else float("nan"),
        "p99_ms": float(p99[1]) * scale[p99[2]] if p99 else float("nan"),
    }


def fill_runs(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM automate_run").fetchone()
        if have and have[0] >= n:
            return
        start = int(conn.execute("SELECT coalesce(max(id), 0) FROM automate_event").fetchone()[0])  # type: ignore[index]
        conn.execute(
            "INSERT INTO automate_event (id, source, event_type, payload, headers, trace_id, received_at)"
            " SELECT %(s)s + i, 'src' || (i %% 10), 'type.' || (i %% 20), '{}', '{}', md5(i::text),"
            " now() - (%(n)s - i) * interval '100 ms' FROM generate_series(1, %(n)s) i",
            {"s": start, "n": n},
        )
        conn.execute(
            "INSERT INTO automate_run"
            " (workflow_name, event_id, attempt, status, error, trace_id, mode, started_at)"
            " SELECT 'wf' || (i %% 5), %(s)s + i, 1,"
            " CASE WHEN i %% 100 = 0 THEN 'failed' ELSE 'succeeded' END,"
            " '', md5(i::text), '', now() - (%(n)s - i) * interval '100 ms' FROM generate_series(1, %(n)s) i",
            {"s": start, "n": n},
        )
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('automate_event', 'id'),"
            " (SELECT max(id) FROM automate_event))"
        )
        conn.execute("VACUUM ANALYZE automate_run")
        conn.execute("VACUUM ANALYZE automate_event")


def latency(client: httpx.Client, path: str, params: dict[str, str], samples: int) -> dict[str, float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args()
    url = options.database_url
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-" + "x" * 50,
        "AUTOMATE_HTTPS": "0",
        "DJANGO_SETTINGS_MODULE": "asgi.settings",
        "PYTHONPATH": f"{ROOT / 'automate'}:{ROOT}",
        "AUTOMATE_API_RATE_LIMIT": "0",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([AUTOMATE, "migrate"], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [AUTOMATE, "tokens", "create", "bench", "--scope", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[1]
    subprocess.run([AUTOMATE, "load", str(HERE / "sources.yaml")], env=env, check=True, capture_output=True)
    fill_runs(url, options.runs)
    port = free_port()
    server = subprocess.Popen([AUTOMATE, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, object] = {"runs_in_table": options.runs}
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        bearer = f"Bearer {token}"
        event = {"type": "order.created", "payload": {"id": 1, "items": [{"sku": "A", "qty": 2}] * 8}}
        variants = [
            ("webhook", base + "/hooks/bench-hook/", json.dumps(event), "", 1, "bench-hook"),
            (
                "api single",
                base + "/api/v1/events",
                json.dumps({"source": "bench-api", **event}),
                bearer,
                1,
                "bench-api",
            ),
            (
                f"api batch of {options.batch}",
                base + "/api/v1/events",
                json.dumps([{"source": "bench-batch", **event}] * options.batch),
                bearer,
                options.batch,
                "bench-batch",
            ),
        ]
        for name, target, body, auth, _, source in variants:
            before = count(url, source)
            figures = wrk(target, body, auth, options.seconds, options.connections)
            written = count(url, source) - before
            results[name] = {"events_per_s": round(written / options.seconds), **figures}
            print(name, results[name], flush=True)
        with httpx.Client(base_url=base + "/api/v1", headers={"Authorization": bearer}) as client:
            first = client.get("/runs", params={"limit": "50"}).json()
            deep_id = client.get("/runs", params={"limit": "1", "until": "1h"}).json()["next_cursor"]
            queries = {
                "first page (50)": {"limit": "50"},
                "page after a cursor an hour back": {
                    "limit": "50",
                    "cursor": deep_id or first["next_cursor"],
                },
                "status=failed (1%)": {"limit": "50", "status": "failed"},
                "trace_id": {"trace_id": "c4ca4238a0b923820dcc509a6f75849b"},
                "workflow=wf3 since 1h": {"limit": "50", "workflow": "wf3", "since": "1h"},
            }
            for name, params in queries.items():
                results[f"GET /runs {name}"] = latency(client, "/runs", params, options.samples)
                print(name, results[f"GET /runs {name}"], flush=True)
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
