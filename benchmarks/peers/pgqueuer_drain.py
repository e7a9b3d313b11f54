"""pgqueuer's no-op drain, on the same database as ours: the peer of ``--compare-peer pgqueuer``.

``python -m benchmarks.peers.pgqueuer_drain --database-url URL -n 100000 --tasks 5 --batch-size 100``

pgqueuer in its best configuration for a drain of short jobs, as its own docs set it up:
the asyncpg driver (about 1.7x its psycopg driver), uvloop, one ``QueueManager`` per dequeue
task each on its own connection (their guide: a direct connection, not a pool, for a queue
manager), ``batch_size`` raised for short jobs (5 tasks x 100 here: their default is 5 x 10),
the schema installed with durable (WAL-logged) tables and their recommended autovacuum settings
(``pgq autovac``). The entrypoint does nothing.

One run: clear pgqueuer's queue and log, enqueue N jobs in bulk (untimed), ``ANALYZE`` and
``CHECKPOINT``, then start the queue managers in drain mode and wait until they exit. The figures
come from the database, like ours: jobs/s from the first to the last completion written to
``pgqueuer_log`` (completions are written in batches, as ours are), the wall time from the start
of the managers to their exit, and the transactions committed per job (``pg_stat_database``).
With ``--json`` the result is one JSON object on stdout (what the harness reads).

Needs the benchmark extra: ``pip install 'django-automate[bench]'`` (pgqueuer, asyncpg, uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

ENTRYPOINT = "bench_noop"

# From the log pgqueuer writes as it completes jobs (one row per job and status).
RESULTS = """
SELECT count(*) FILTER (WHERE status = 'successful'),
       min(created) FILTER (WHERE status = 'successful'),
       max(created) FILTER (WHERE status = 'successful')
FROM pgqueuer_log WHERE entrypoint = $1
"""
# Each job's time in the queue: its 'queued' log row (written by the enqueue) to its 'successful' one.
LATENCY = """
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM s.created - q.created)),
       max(extract(epoch FROM s.created - q.created))
FROM pgqueuer_log s JOIN pgqueuer_log q ON q.job_id = s.job_id AND q.status = 'queued'
WHERE s.status = 'successful' AND s.entrypoint = $1
"""
SERIES = """
SELECT floor(extract(epoch FROM created - $2) / $3)::int AS slot, count(*)
FROM pgqueuer_log WHERE status = 'successful' AND entrypoint = $1 GROUP BY slot ORDER BY slot
"""
COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes a URL only: turn a libpq key=value conninfo into one."""
    from psycopg.conninfo import conninfo_to_dict

    if url.startswith(("postgres://", "postgresql://")):
        return url
    from urllib.parse import quote

    p = conninfo_to_dict(url)
    auth = quote(str(p.get("user", ""))) + (f":{quote(str(p['password']))}" if p.get("password") else "")
    host = str(p.get("host", "127.0.0.1"))
    query = f"?host={quote(host)}" if host.startswith("/") else ""
    hostport = "" if query else host + (f":{p['port']}" if p.get("port") else "")
    if query and p.get("port"):
        query += f"&port={p['port']}"
    return f"postgresql://{auth}@{hostport}/{quote(str(p.get('dbname', '')))}{query}"


async def commits(conn: Any) -> int:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return int(await conn.fetchval(COMMITS))


async def prepare(dsn: str, jobs: int) -> None:
    """Install pgqueuer's schema when missing, empty its queue and log, enqueue ``jobs`` no-op jobs."""
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries

    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        if not await queries.schema_is_installed():
            await queries.install()
        await queries.optimize_autovacuum()
        await queries.clear_queue()
        await queries.clear_queue_log()
        await queries.clear_statistics_log()
        for first in range(0, jobs, 10_000):
            n = min(10_000, jobs - first)
            await queries.enqueue([ENTRYPOINT] * n, [None] * n, [0] * n)
        await conn.execute("ANALYZE pgqueuer")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def drain(dsn: str, jobs: int, tasks: int, batch_size: int) -> dict[str, Any]:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    await prepare(dsn, jobs)
    stats = await asyncpg.connect(dsn)
    try:
        before = await commits(stats)
        connections = [await asyncpg.connect(dsn) for _ in range(tasks)]
        managers = []
        for conn in connections:
            qm = QueueManager(Queries(AsyncpgDriver(conn)))

            @qm.entrypoint(ENTRYPOINT)
            async def noop(job: Job) -> None:
                return None

            managers.append(qm)
        started = time.monotonic()
        try:
            await asyncio.gather(
                *(qm.run(batch_size=batch_size, mode=QueueExecutionMode.drain) for qm in managers)
            )
            wall = time.monotonic() - started
        finally:
            for conn in connections:
                await conn.close()
        await asyncio.sleep(0.5)  # exited backends flush their statistics
        transactions = await commits(stats) - before - 1
        completed, first, last = await stats.fetchrow(RESULTS, ENTRYPOINT)
        (p50, p99), worst = await stats.fetchrow(LATENCY, ENTRYPOINT) if completed else ((0.0, 0.0), 0.0)
        seconds = max((last - first).total_seconds(), 1e-9) if completed else wall
        bucket = max(0.1, round(seconds / 100, 2))
        rows = await stats.fetch(SERIES, ENTRYPOINT, first, bucket) if completed else []
        left = int(await stats.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = $1", ENTRYPOINT))
    finally:
        await stats.close()
    return {
        "mode": "pgqueuer",
        "jobs": jobs,
        "tasks": tasks,
        "batch_size": batch_size,
        "completed": int(completed),
        "left_in_queue": left,
        "seconds": round(seconds, 3),
        "jobs_per_second": round(jobs / seconds, 1),
        "wall_seconds": round(wall, 3),
        "wall_jobs_per_second": round(jobs / wall, 1),
        "latency_p50_ms": round(float(p50) * 1000, 1),
        "latency_p99_ms": round(float(p99) * 1000, 1),
        "latency_max_ms": round(float(worst) * 1000, 1),
        "series": [(slot * bucket, count / bucket) for slot, count in rows],
        "transactions": transactions,
        "transactions_per_job": round(transactions / jobs, 3),
    }


def run(url: str, jobs: int, tasks: int, batch_size: int) -> dict[str, Any]:
    import uvloop

    return uvloop.run(drain(asyncpg_dsn(url), jobs, tasks, batch_size))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--database-url", required=True, help="The benchmark database (also ours).")
    parser.add_argument("-n", "--jobs", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=5, help="Dequeue tasks (queue managers, connections).")
    parser.add_argument("--batch-size", type=int, default=100, help="Jobs per dequeue.")
    parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")
    args = parser.parse_args(argv)
    from psycopg.conninfo import conninfo_to_dict

    if "bench" not in str(conninfo_to_dict(args.database_url).get("dbname", "")):
        print("This empties pgqueuer's queue: the database's name must contain 'bench'.", file=sys.stderr)
        return 2
    try:
        import asyncpg  # noqa: F401
        import pgqueuer  # noqa: F401
    except ImportError as exc:
        print(f"{exc.name} is not installed: pip install 'django-automate[bench]'", file=sys.stderr)
        return 2
    result = run(args.database_url, args.jobs, args.tasks, args.batch_size)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"pgqueuer {args.tasks} x {args.batch_size}: {result['jobs_per_second']:,.0f} jobs/s "
            f"({result['completed']:,} of {args.jobs:,} completed, {result['wall_seconds']:.2f} s wall, "
            f"{result['transactions_per_job']:.3f} transactions/job)"
        )
    return 0 if result["completed"] == args.jobs and not result["left_in_queue"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
