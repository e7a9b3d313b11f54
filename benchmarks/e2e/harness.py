"""The end-to-end benchmark behind ``automate bench e2e``: webhooks at a fixed rate, as deployed.

One run: empty the benchmark database's events, jobs and runs (keeping 100,000 completed ones,
analysed, as a database in use has), load a Standard Webhooks source and a one-step workflow
(the built-in ``log`` connector), start ``automate serve`` and ``automate worker`` as processes
at their default settings, wait until one probe webhook has become a finished run, then send
signed webhooks at ``rate`` per second for ``warmup + duration`` seconds from an open-loop
sender (``sender.py``), sampling the outbox's depth every second, and wait for the runs.

Everything is read from the database: webhook-to-run-finished is each measured event's
``received_at`` (the ingest statement's time) to its run's ``finished_at``; the depth is the
number of jobs ready, retrying or leased. The sender's own achieved rate is reported with it:
a sender that could not keep the rate says so, and the figures are then for the rate it achieved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from benchmarks.databases import admin_url, django_url, migrate_and_load
from benchmarks.e2e import sender
from benchmarks.outbox.queries import PENDING

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
AUTOMATE = str(Path(sys.executable).with_name("automate"))
SOURCE = "e2e-bench"

PLATFORMS = {
    "deployed": "automate serve + automate worker",
    "up": "automate up (web and worker in one process)",
}
RESET = "TRUNCATE automate_step_run, automate_run, automate_outbox_job, automate_event"
SEED = """
WITH e AS (
    INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
    SELECT 'seed', 'seed', '{}', '{}', md5(g::text), now() FROM generate_series(1, %(n)s) g
    RETURNING id
)
INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts, available_at,
                                 lease_owner, last_error, created_at, updated_at, completed_at)
SELECT id, 'event', 'completed', 1, 5, now(), '', '', now(), now(), now() FROM e
"""
PROBE_DONE = """
SELECT count(*) FROM automate_event e JOIN automate_run r ON r.event_id = e.id
WHERE e.source = %(source)s AND e.payload->>'phase' = 'probe' AND r.finished_at IS NOT NULL
"""
# The measured events (not the warm-up's), and their runs.
MEASURED = """
SELECT count(DISTINCT e.id),
       count(r.id) FILTER (WHERE r.finished_at IS NOT NULL),
       percentile_cont(ARRAY[0.5, 0.99])
           WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - e.received_at))
           FILTER (WHERE r.finished_at IS NOT NULL),
       max(extract(epoch FROM r.finished_at - e.received_at))
FROM automate_event e LEFT JOIN automate_run r ON r.event_id = e.id
WHERE e.source = %(source)s AND e.payload->>'phase' = 'measure'
"""


BENCH_SECRET_KEY = "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"  # serve refuses weak keys


@dataclass
class E2EConfig:
    rate: float = 2000.0
    duration: float = 60.0
    warmup: float = 2.0
    drain_timeout: float = 60.0
    connections: int = 64
    database_url: str = ""
    out_dir: Path = HERE / "results"
    seed: int = 100_000
    platform: str = "deployed"  # "deployed": automate serve + automate worker; "up": automate up


@dataclass
class E2EResult:
    config: dict[str, Any]
    sender: dict[str, Any]
    events: int
    runs_finished: int
    runs_unfinished: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    depth: list[int] = field(default_factory=list)  # jobs waiting, sampled every second
    drain_seconds: float = 0.0  # from the last send to the last run finished


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class E2E:
    def __init__(self, config: E2EConfig, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.config = config
        self.url = config.database_url
        if "bench" not in str(conninfo_to_dict(self.url).get("dbname", "")):
            raise SystemExit("The benchmark empties the outbox: its database's name must contain 'bench'.")
        self.out, self.err = out, err
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": django_url(self.url),
            "DJANGO_SETTINGS_MODULE": "asgi.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or BENCH_SECRET_KEY,
            "AUTOMATE_SECRET_BENCH_E2E_HOOK": sender.SECRET,
        }
        self.depth: list[int] = []

    def say(self, message: str) -> None:
        self.err.write(message + "\n")
        self.err.flush()

    def prepare(self, base_url: str) -> None:
        name = str(conninfo_to_dict(self.url)["dbname"])
        with psycopg.connect(admin_url(base_url, name), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                self.say(f"created database {name}")
        migrate_and_load(self.env, HERE / "workflow.yaml")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(RESET)
            if self.config.seed:
                conn.execute(SEED, {"n": self.config.seed})
            conn.execute("VACUUM ANALYZE automate_event")
            conn.execute("VACUUM ANALYZE automate_outbox_job")
            conn.execute("CHECKPOINT")

    # -- the platform, as deployed ------------------------------------------------------------

    @contextlib.contextmanager
    def platform(self) -> Any:
        """``automate serve`` and ``automate worker`` at their defaults (or ``automate up``, web and
        worker in one process); stopped with SIGTERM."""
        port = str(self.port)
        if self.config.platform == "up":
            commands = [[AUTOMATE, "up", "--port", port, "--no-demo"]]
        else:
            commands = [[AUTOMATE, "serve", "--port", port], [AUTOMATE, "worker"]]
        with contextlib.ExitStack() as stack:
            logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
            procs = [
                subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
                for cmd, log in zip(commands, logs, strict=True)
            ]
            try:
                yield procs
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                for command, proc, log in zip(commands, procs, logs, strict=True):
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    if proc.returncode not in (0, -signal.SIGTERM):
                        log.seek(0)
                        tail = log.read().decode(errors="replace")[-3000:]
                        self.say(f"automate {command[1]} exited with {proc.returncode}:\n{tail}")

    async def probe(self, procs: list[subprocess.Popen[bytes]]) -> None:
        """One webhook through the whole path (serve accepts it, the worker runs it), within 60 s."""
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("automate serve did not start listening")
            await asyncio.sleep(0.1)
        sent = await sender.send("127.0.0.1", self.port, f"/hooks/{SOURCE}/", 1.0, 1, self.body("probe"), 1)
        if sent.statuses.get(202) != 1:
            raise SystemExit(f"the probe webhook was not accepted: {sent.summary()}")
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while True:
                row = await (await conn.execute(PROBE_DONE, {"source": SOURCE})).fetchone()
                if row and row[0]:
                    return
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise SystemExit("the probe webhook's run did not finish: is the worker running?")
                await asyncio.sleep(0.1)

    @staticmethod
    def body(phase: str, warm: int = 0) -> Any:
        def body_of(i: int) -> dict[str, object]:
            return {
                "type": "order.created",
                "id": f"ord_{i:08d}",
                "phase": phase if i >= warm else "warmup",
                "data": {"customer": f"cus_{i % 5000:05d}", "amount": 1999 + i % 100, "currency": "eur"},
            }

        return body_of

    async def sample(self, stop: asyncio.Event) -> None:
        """The outbox's depth once a second until ``stop``, and once more then (the end state)."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            tick = time.monotonic()
            while True:
                row = await (await conn.execute(PENDING)).fetchone()
                self.depth.append(int(row[0]) if row else 0)
                if stop.is_set():
                    return
                tick += 1.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, tick - time.monotonic()))

    async def drain(self, procs: list[subprocess.Popen[bytes]]) -> float:
        """Wait (at most ``drain_timeout``) until the outbox is empty: every job's run has finished.

        Polled with the outbox's cheap count (two partial indexes), not by joining events and
        runs, so that the harness takes next to nothing from the worker it is waiting for.
        """
        started = time.monotonic()
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while time.monotonic() - started < self.config.drain_timeout:
                row = await (await conn.execute(PENDING)).fetchone()
                if not row or not row[0] or any(p.poll() is not None for p in procs):
                    break
                await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def measure(self, procs: list[subprocess.Popen[bytes]]) -> E2EResult:
        c = self.config
        await self.probe(procs)
        warm = round(c.warmup * c.rate)
        count = warm + round(c.duration * c.rate)
        self.say(
            f"  sending {count:,} webhooks at {c.rate:,.0f}/s ({c.warmup:g} s warm-up, {c.duration:g} s)"
        )
        stop = asyncio.Event()
        sampler = asyncio.create_task(self.sample(stop))
        try:
            sent = await sender.send(
                "127.0.0.1", self.port, f"/hooks/{SOURCE}/", c.rate, count, self.body("measure", warm),
                c.connections,
            )  # fmt: skip
            drained = await self.drain(procs)
        finally:
            stop.set()
            await sampler
        with psycopg.connect(self.url) as conn:
            row = conn.execute(MEASURED, {"source": SOURCE}).fetchone()
        assert row is not None
        events, finished, quantiles, worst = row
        p50, p99 = quantiles or (0.0, 0.0)
        return E2EResult(
            config={**asdict(c), "out_dir": str(c.out_dir), "settings": overrides()},
            sender=sent.summary(),
            events=int(events),
            runs_finished=int(finished),
            runs_unfinished=int(events) - int(finished),
            latency_p50_ms=round(float(p50) * 1000, 1),
            latency_p99_ms=round(float(p99) * 1000, 1),
            latency_max_ms=round(float(worst or 0) * 1000, 1),
            depth=self.depth,
            drain_seconds=round(drained, 2),
        )

    def run(self, base_url: str) -> E2EResult:
        import uvloop

        self.prepare(base_url)
        with self.platform() as procs:
            return uvloop.run(self.measure(procs))


def overrides() -> dict[str, str]:
    """The platform settings the processes inherit from this environment (``AUTOMATE_*``): none
    means the platform ran at its defaults."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("AUTOMATE_")}


def report(result: E2EResult, out: TextIO) -> None:
    c, s = result.config, result.sender
    given = c.get("settings") or {}
    at = "at the defaults" if not given else "with " + ", ".join(f"{k}={v}" for k, v in given.items())
    out.write(
        f"e2e: {c['rate']:,.0f} signed webhooks/s for {c['duration']:g} s (+{c['warmup']:g} s warm-up), "
        f"{PLATFORMS[c['platform']]} {at}\n"
    )
    statuses = ", ".join(f"{k}: {v:,}" for k, v in s["statuses"].items()) or "none"
    out.write(
        f"sender: {s['sent']:,} sent, achieved {s['achieved_rate']:,.0f}/s of {s['target_rate']:,.0f}/s; "
        f"answers {statuses}; errors {sum(s['errors'].values()):,}; behind schedule p99 "
        f"{s['lag_p99_ms']:.1f} ms, max {s['lag_max_ms']:.1f} ms; CPU {s['cpu_percent']:.0f} %\n"
    )
    if not s["kept_rate"]:
        why = (
            f"{s['waited_for_connection']:,} requests found all {c['connections']} connections waiting for "
            "answers (the server's pace)"
            if s["waited_for_connection"]
            else "it ran out of CPU (no request waited for a connection)"
        )
        out.write(
            f"WARNING: the sender did not keep the rate ({s['achieved_rate']:,.0f}/s of "
            f"{s['target_rate']:,.0f}/s): {why}. The figures below are for the rate achieved.\n"
        )
    out.write(
        f"webhook-to-run-finished (event received_at -> run finished_at), {result.runs_finished:,} runs: "
        f"p50 {result.latency_p50_ms:,.1f} ms, p99 {result.latency_p99_ms:,.1f} ms, "
        f"max {result.latency_max_ms:,.1f} ms\n"
    )
    out.write(
        f"runs not finished {c['drain_timeout']:g} s after the last send: {result.runs_unfinished:,} "
        f"(accepted events measured: {result.events:,}; drain took {result.drain_seconds:.1f} s)\n"
    )
    depth = result.depth
    out.write(f"queue depth each second: {' '.join(str(d) for d in depth)}\n")
    if depth:
        out.write(f"queue depth: max {max(depth):,}, at the end {depth[-1]:,}\n")


def main(config: E2EConfig, base_url: str, out: TextIO, err: TextIO = sys.stderr) -> int:
    bench = E2E(config, out, err)
    result = bench.run(base_url)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = config.out_dir / f"e2e-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(asdict(result), indent=1, default=str))
    bench.say(f"results: {path}")
    report(result, out)
    return 0 if result.events and not result.runs_unfinished else 1
