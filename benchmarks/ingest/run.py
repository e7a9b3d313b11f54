"""Ingest throughput benchmark: the platform under uvicorn, driven by wrk, against a bare baseline.

One command (``python benchmarks/ingest/run.py``) does everything: starts a throwaway PostgreSQL
(or uses ``--database-url``), migrates it, creates a ``standard_webhooks`` source, then for each
run and variant starts uvicorn, warms up, drives ``POST /hooks/bench/`` with pre-signed ~1 KB JSON
bodies (distinct ``webhook-id`` each) from wrk at a fixed concurrency, checks that every event
answered 202 is in the database with its job, and stops the server. Variants run interleaved
(run 1 of each, then run 2 of each in the reverse order, ...) so that neither machine noise nor
the order leans on one of them. It prints the medians (min-max) of accepted/s, p50 and p99, the
CPU each side used, and each variant's ratios to the one-statement bare baseline (``bare1``,
``bare_one.py``) for accepted/s and p99, run by run (a pair is one run of each, side by side)
and their medians; the raw figures go to ``--json``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SECRET = "whsec_" + base64.b64encode(b"bench-signing-key-0123456789abcdef").decode()
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    app: str = "asgi.asgi:application"
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    loop: str = "uvloop"
    http: str = "httptools"


VARIANTS = {
    v.name: v
    for v in [
        Variant(
            "bare1",
            "one-statement bare baseline: plain ASGI + psycopg pool, event and job in one statement",
            app="bare_one:app",
        ),
        Variant("bare", "bare ASGI + psycopg pool running the platform's INSERT_EVENT", app="bare:app"),
        Variant("bare-2w", "the baseline with 2 uvicorn workers", app="bare:app", workers=2),
        Variant(
            "django",
            "platform through Django's handler + WebhookView, group commit",
            env={"BENCH_FAST_PATH": "0"},
        ),
        Variant("single", "platform, lean lane, one statement per webhook", env={"BENCH_GROUP_COMMIT": "0"}),
        Variant(
            "asyncio", "platform, lean lane, group commit, asyncio loop + h11", loop="asyncio", http="h11"
        ),
        Variant("nocache", "platform, group commit, no source/secret cache", env={"BENCH_NO_CACHE": "1"}),
        Variant("group", "platform, lean lane, group commit (the default)"),
        Variant(
            "group-nofreeze",
            "platform, group commit, the startup heap left to the collector",
            env={"AUTOMATE_GC_FREEZE": "0"},
        ),
        Variant("group-2w", "platform, lean lane, group commit, 2 uvicorn workers", workers=2),
    ]
}
DEFAULT = ["bare1", "group"]
BASELINE = "bare1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body_of(i: int, tag: str) -> str:
    """A ~1 KB JSON event, distinct per request."""
    items = [{"sku": f"SKU-{n:05d}", "qty": n % 7 + 1, "price": 1999 + n} for n in range(12)]
    doc = {
        "type": "invoice.paid",
        "id": f"evt_{tag}_{i}",
        "data": {"customer": f"cus_{i:08d}", "items": items},
    }
    return json.dumps(doc, separators=(",", ":"))


def write_pool(path: Path, count: int, tag: str) -> None:
    """``count`` signed requests (id, timestamp, Standard Webhooks signature, body), one per line."""
    now = str(int(time.time()))
    with path.open("w") as out:
        for i in range(count):
            msg_id, body = f"msg_{tag}_{i}", body_of(i, tag)
            signed = f"{msg_id}.{now}.{body}".encode()
            sig = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
            out.write(f"{msg_id}\t{now}\t{sig}\t{body}\n")


CREATE_SOURCE = """
INSERT INTO automate_webhook_source
    (slug, name, scheme, secret_ref, token_hash, config, enabled, created_at, updated_at)
VALUES ('bench', 'bench', 'standard_webhooks', 'env:BENCH_HOOK', '', '{}', true, now(), now())
"""
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
PRESENT = """
SELECT count(DISTINCT e.id) FROM automate_event e JOIN automate_outbox_job j ON j.event_id = e.id
WHERE e.id = ANY(%s)
"""


def prepare_database(url: str, seed: int = 100_000) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "DJANGO_SETTINGS_MODULE": "asgi.settings",
    }
    subprocess.run([sys.executable, "-m", "automate_core.cli.main", "migrate"], env=env, check=True, cwd=ROOT)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM automate_webhook_source WHERE slug = 'bench'")
        conn.execute(CREATE_SOURCE)
        # a table that is not empty and analysed, as in production (a fresh, unanalysed table
        # gets plans that scan it sequentially and degrade as it grows)
        conn.execute(SEED, {"n": seed})
        conn.execute("VACUUM ANALYZE automate_event")
        conn.execute("VACUUM ANALYZE automate_outbox_job")


@contextlib.contextmanager
def server(variant: Variant, url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        # this checkout's code first, not an installed copy (a worktree of an older commit runs its own)
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "automate"), str(ROOT)]),
        "AUTOMATE_SECRET_BENCH_HOOK": SECRET,
        "LOG_LEVEL": "WARNING",
        **variant.env,
    }
    cmd = [
        sys.executable, "-m", "uvicorn", variant.app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(variant.workers), "--loop", variant.loop, "--http", variant.http,
        "--no-access-log", "--log-level", "warning", "--lifespan", "on",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{variant.name}: uvicorn did not start")
        time.sleep(1.0 if variant.workers > 1 else 0.3)  # let every worker come up
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(root: psutil.Process | None) -> float:
    """CPU seconds used so far by a process and all its descendants, including exited ones.

    Exited children are counted through their parent's ``children_*`` times (the parent reaped
    them), so PostgreSQL backends that come and go are not lost between two readings.
    """
    if root is None:
        return float("nan")
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def postmaster(pg: Any) -> psutil.Process | None:
    """Our throwaway cluster's postmaster (never another PostgreSQL on the machine)."""
    if pg is None:
        return None
    pid_file = Path(pg.server.pgdata) / "postmaster.pid"
    return psutil.Process(int(pid_file.read_text().split()[0]))


def wrk(port: int, pool: Path, out: Path, seconds: float, connections: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_POOL": str(pool), "BENCH_OUT": str(out)}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(HERE / "post.lua"), f"http://127.0.0.1:{port}/hooks/bench/"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)


def parse(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"statuses": {}, "ids": []}
    for line in out.read_text().splitlines():
        key, *values = line.split()
        if key == "id":
            result["ids"].append(int(values[0]))
        elif key == "status":
            result["statuses"][values[0]] = result["statuses"].get(values[0], 0) + int(values[1])
        elif key == "latency_us":
            result["p50_ms"], result["p90_ms"], result["p99_ms"], result["max_ms"] = (
                int(v) / 1000 for v in values
            )
        elif key == "errors":
            result["errors"] = [int(v) for v in values]
        else:
            result[key] = int(values[0])
    return result


def missing_events(url: str, ids: list[int]) -> int:
    """How many of the ids answered 202 have no event with a job in the database."""
    with psycopg.connect(url) as conn:
        row = conn.execute(PRESENT, (ids,)).fetchone()
    return len(set(ids)) - (row[0] if row else 0)


def one_run(
    variant: Variant, url: str, pg_root: psutil.Process | None, work: Path, args: argparse.Namespace, run: int
) -> dict[str, Any]:
    port = free_port()
    tag = f"{variant.name}{run}{int(time.time())}"
    pool, warm, out = work / "pool.tsv", work / "warm.tsv", work / "out.txt"
    write_pool(warm, int(args.warmup * 15000), tag + "w")
    write_pool(pool, int(args.duration * args.pool_rate), tag)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    with server(variant, url, port) as proc:
        if args.warmup > 0:
            wrk(port, warm, work / "warm.out", args.warmup, args.connections).wait()
        srv = psutil.Process(proc.pid)
        cpu_before = (cpu_seconds(srv), cpu_seconds(pg_root))
        load = wrk(port, pool, out, args.duration, args.connections)
        load_proc = psutil.Process(load.pid)
        wrk_cpu = 0.0
        while load.poll() is None:
            with contextlib.suppress(psutil.Error):
                t = load_proc.cpu_times()
                wrk_cpu = t.user + t.system
            time.sleep(0.2)
        cpu_after = (cpu_seconds(srv), cpu_seconds(pg_root))
    result = parse(out)
    seconds = result["duration_us"] / 1e6
    accepted = result["statuses"].get("202", 0)
    result.update(
        variant=variant.name,
        run=run,
        accepted=accepted,
        accepted_per_s=accepted / seconds,
        missing=missing_events(url, result.pop("ids")),
        cpu_server=100 * (cpu_after[0] - cpu_before[0]) / seconds,
        cpu_postgres=100 * (cpu_after[1] - cpu_before[1]) / seconds,
        cpu_wrk=100 * wrk_cpu / seconds,
    )
    if accepted < result["requests"] * 0.999:
        print(
            f"  note: {variant.name} answered {result['statuses']} (pool exhausted or refusals)",
            file=sys.stderr,
        )
    print(
        f"  {variant.name:9} run {run}: {result['accepted_per_s']:8.0f} accepted/s"
        f"  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms"
        f"  missing {result['missing']}  cpu server/pg/wrk "
        f"{result['cpu_server']:.0f}/{result['cpu_postgres']:.0f}/{result['cpu_wrk']:.0f} %",
        file=sys.stderr,
    )
    return result


def med(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def pair_ratios(results: list[dict[str, Any]], name: str, key: str) -> list[float]:
    """``name``'s ``key`` over the baseline's, run by run (each run ran both, side by side)."""
    base = {r["run"]: r[key] for r in results if r["variant"] == BASELINE}
    return [r[key] / base[r["run"]] for r in results if r["variant"] == name and base.get(r["run"])]


def report(results: list[dict[str, Any]], names: list[str], args: argparse.Namespace) -> str:
    lines = [
        f"c={args.connections}, {args.duration:g} s per run, {args.runs} runs, median (min-max)",
        "",
        f"| variant | accepted/s | p50 ms | p99 ms | accepted/s vs {BASELINE} | p99 vs {BASELINE} | missing "
        "| CPU % server / postgres / wrk |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for name in names:
        rs = [r for r in results if r["variant"] == name]
        rate = [r["accepted_per_s"] for r in rs]
        cpu = " / ".join(
            f"{statistics.median([r[k] for r in rs]):.0f}" for k in ("cpu_server", "cpu_postgres", "cpu_wrk")
        )
        by_rate, by_p99 = pair_ratios(results, name, "accepted_per_s"), pair_ratios(results, name, "p99_ms")
        rate_ratio = f"{statistics.median(by_rate):.2f}x" if by_rate and name != BASELINE else "-"
        p99_ratio = f"{statistics.median(by_p99):.2f}x" if by_p99 and name != BASELINE else "-"
        lines.append(
            f"| {name}: {VARIANTS[name].what} | {med(rate, ',.0f')} | "
            f"{med([r['p50_ms'] for r in rs], '.1f')} | {med([r['p99_ms'] for r in rs], '.1f')} | "
            f"{rate_ratio} | {p99_ratio} | {sum(r['missing'] for r in rs)} | {cpu} |"
        )
        if name != BASELINE and by_rate:
            ratios.append(
                f"{name}/{BASELINE}: accepted/s {statistics.median(by_rate):.2f}x "
                f"(pairs {', '.join(f'{x:.2f}' for x in by_rate)}); p99 {statistics.median(by_p99):.2f}x "
                f"(pairs {', '.join(f'{x:.2f}' for x in by_p99)}; above 1 is a worse tail)"
            )
    return "\n".join([*lines, "", *ratios])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants", default=",".join(DEFAULT), help=f"comma-separated; known: {','.join(VARIANTS)}"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each measured run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--pool-rate", type=int, default=12000, help="signed requests per second of run to prepare"
    )
    parser.add_argument(
        "--database-url", default="", help="use this database instead of a throwaway PostgreSQL"
    )
    parser.add_argument("--json", default="", help="write every run's figures here")
    parser.add_argument(
        "--seed", type=int, default=100_000, help="completed events and jobs written (and analysed) first"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    if BASELINE not in names:
        names.insert(0, BASELINE)
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk)")
    work = Path(tempfile.mkdtemp(prefix="automate-bench-"))
    pg = None
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.databases import django_url

        url = django_url(args.database_url) if args.database_url else ""  # a conninfo or a URL
        if not url:
            from tests.ingest.throwaway_pg import ThrowawayPostgres

            pg = ThrowawayPostgres(work)
            url = pg.url
        prepare_database(url, args.seed)
        results = []
        for run in range(1, args.runs + 1):
            for name in names if run % 2 else names[::-1]:
                results.append(one_run(VARIANTS[name], url, postmaster(pg), work, args, run))
        print(report(results, names, args))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return 1 if any(r["missing"] for r in results) else 0
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
