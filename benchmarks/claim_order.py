"""The claim order (issue 13): fairness per key, priority under a backlog, and the drain's cost.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/automate \\
        .venv/bin/python -m benchmarks.claim_order [--only fairness,priority,drain]

Works in ``<DATABASE_URL's database>_bench`` (created, emptied, migrated). The drainers are the
worker's own statements without the worker around them: ``--drainers`` asyncio loops (2, as
two worker processes), each on its own connection, claiming ``--batch`` jobs (50, the default
``AUTOMATE_WORKER_BATCH_SIZE``) with the platform's claim and settling them with its
``COMPLETE``; in (a) and (b) each batch also "works" ``--work`` seconds (0.04: about 2,500 jobs
a second over two drainers, a worker running real steps), in (c) nothing (the claim's cost shows
most there). The settings are the defaults (``AUTOMATE_PRIORITY_AGING`` 1 s,
``AUTOMATE_FAIRNESS_QUANTUM`` 0.01 s).

(a) **fairness**: tenant A's 50,000 events arrive at once, tenant B sends one a second while
    they drain; B's wait (its job's creation to its completion) p50/p99, with fairness on
    (``fair_key`` A and B) and off (no key), alternated.
(b) **priority**: a backlog of 100,000 priority-0 jobs; one priority-100 job every 0.2 s while it
    drains; the latency of those, with and without their priority, alternated.
(c) **drain**: 100,000 jobs drained by the claim before issue 13 (``CLAIM_BATCH_FIFO`` on the
    schema before migration 0013: index ``(available_at, id)``, no rank trigger, no queue and
    fairness indexes) and by today's (``CLAIM_BATCH``, every queue; ``CLAIM_BATCH_QUEUE``, one
    queue named; ``CLAIM_BATCH_QUEUES``, two named), alternated A B C D A B C D; jobs/s and the
    time to insert the backlog (what the extra indexes cost ingest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "automate"), str(ROOT)]

from automate_core.outbox import queries  # noqa: E402
from benchmarks.databases import admin_url, bench_url, django_url  # noqa: E402

INSERT = """
WITH e AS (
    INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
    SELECT %(source)s, 'bench', jsonb_build_object('i', g), '{}'::jsonb, md5(random()::text), now()
    FROM generate_series(1, %(n)s) AS g
    RETURNING id
)
INSERT INTO automate_outbox_job
    (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
     queue, priority, fair_key, created_at, updated_at)
SELECT id, 'event', 'ready', 0, 5, now(), '', '', 'default', %(priority)s, %(fair_key)s, now(), now()
FROM e ORDER BY id
RETURNING id
"""

# The schema before migration 0013, for the drain's baseline, and back.
BEFORE_0013 = """
DROP TRIGGER IF EXISTS automate_outbox_rank_inserted ON automate_outbox_job;
DROP TRIGGER IF EXISTS automate_outbox_rank_moved ON automate_outbox_job;
DROP INDEX IF EXISTS automate_outbox_claimable;
DROP INDEX IF EXISTS automate_outbox_by_queue;
DROP INDEX IF EXISTS automate_outbox_fair;
CREATE INDEX automate_outbox_claimable ON automate_outbox_job (available_at, id)
    WHERE status IN ('ready', 'retry');
"""
AFTER_0013 = """
DROP TRIGGER IF EXISTS automate_outbox_rank_inserted ON automate_outbox_job;
DROP TRIGGER IF EXISTS automate_outbox_rank_moved ON automate_outbox_job;
DROP INDEX IF EXISTS automate_outbox_claimable;
DROP INDEX IF EXISTS automate_outbox_by_queue;
DROP INDEX IF EXISTS automate_outbox_fair;
CREATE INDEX automate_outbox_claimable ON automate_outbox_job (claim_rank, id)
    WHERE status IN ('ready', 'retry');
CREATE INDEX automate_outbox_by_queue ON automate_outbox_job (queue, claim_rank, id)
    WHERE status IN ('ready', 'retry');
CREATE INDEX automate_outbox_fair ON automate_outbox_job (queue, fair_key, priority, claim_rank)
    WHERE status IN ('ready', 'retry') AND NOT fair_key = '';
CREATE TRIGGER automate_outbox_rank_inserted BEFORE INSERT ON automate_outbox_job
    FOR EACH ROW
    WHEN (NEW.priority <> 0 OR NEW.fair_key <> '' OR NEW.claim_rank IS DISTINCT FROM NEW.available_at)
    EXECUTE FUNCTION automate_outbox_rank();
CREATE TRIGGER automate_outbox_rank_moved BEFORE UPDATE OF available_at, priority ON automate_outbox_job
    FOR EACH ROW
    WHEN (NEW.available_at IS DISTINCT FROM OLD.available_at OR NEW.priority IS DISTINCT FROM OLD.priority)
    EXECUTE FUNCTION automate_outbox_rank();
"""

WAITS = """
SELECT extract(epoch FROM completed_at - created_at) FROM automate_outbox_job
WHERE id = ANY(%(ids)s) AND status = 'completed'
"""


def prepare(url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    with psycopg.connect(admin_url(url, name), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = django_url(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789abcdefghijklmnop")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


async def empty(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("TRUNCATE automate_outbox_job, automate_event CASCADE")


async def insert(
    conn: psycopg.AsyncConnection[Any], n: int, source: str, priority: int = 0, key: str = ""
) -> list[int]:
    cur = await conn.execute(INSERT, {"n": n, "source": source, "priority": priority, "fair_key": key})
    return [r[0] for r in await cur.fetchall()]


async def drain(
    url: str,
    done: Callable[[], bool],
    *,
    drainers: int,
    batch: int,
    work: float,
    claim: Any = queries.CLAIM_BATCH,
    extra: dict[str, Any] | None = None,
) -> tuple[int, float]:
    """Claim and complete until ``done()`` and nothing is left; returns (jobs, seconds)."""
    count = 0
    started = time.monotonic()

    async def loop(i: int) -> None:
        nonlocal count
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            owner = f"bench-{i}"
            while True:
                params = {"limit": batch, "owner": owner, "lease": 30, **(extra or {})}
                rows = await (await conn.execute(claim, params)).fetchall()
                if not rows:
                    if done():
                        return
                    await asyncio.sleep(0.01)
                    continue
                if work:
                    await asyncio.sleep(work)
                ids, attempts = [r[0] for r in rows], [r[2] for r in rows]
                await conn.execute(
                    queries.COMPLETE,
                    {"ids": ids, "attempts": attempts, "results": [None] * len(ids), "owner": owner},
                )
                count += len(ids)

    await asyncio.gather(*(loop(i) for i in range(drainers)))
    return count, time.monotonic() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3) if ordered else float("nan")


async def fairness(url: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"on": [], "off": []}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for mode in ["on", "off"] * args.repeat:
            await empty(conn)
            await insert(conn, args.flood, "tenant-a", key="tenant-a" if mode == "on" else "")
            await conn.execute("ANALYZE automate_outbox_job")
            flood_done = asyncio.Event()
            b_ids: list[int] = []

            async def tenant_b(
                mode: str = mode, flood_done: asyncio.Event = flood_done, b_ids: list[int] = b_ids
            ) -> None:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as b:
                    while not flood_done.is_set():
                        b_ids.extend(await insert(b, 1, "tenant-b", key="tenant-b" if mode == "on" else ""))
                        await asyncio.sleep(1.0)  # one event a second

            async def watch(flood_done: asyncio.Event = flood_done) -> None:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as w:
                    while True:
                        left = (await (await w.execute(
                            "SELECT count(*) FROM automate_outbox_job WHERE status IN ('ready','retry')"
                            " AND event_id IN (SELECT id FROM automate_event WHERE source = 'tenant-a')"
                        )).fetchone() or [0])[0]  # fmt: skip
                        if not left:
                            flood_done.set()
                            return
                        await asyncio.sleep(0.5)

            sender = asyncio.create_task(tenant_b())
            watcher = asyncio.create_task(watch())
            jobs, seconds = await drain(
                url, flood_done.is_set, drainers=args.drainers, batch=args.batch, work=args.work
            )
            await sender
            await watcher
            waits = [float(r[0]) for r in await (await conn.execute(WAITS, {"ids": b_ids})).fetchall()]
            results[mode].append(
                {"b_events": len(waits), "b_wait_p50": pct(waits, 50), "b_wait_p99": pct(waits, 99),
                 "b_wait_max": round(max(waits), 3) if waits else None,
                 "drain_seconds": round(seconds, 1), "jobs_per_second": round(jobs / seconds)}
            )  # fmt: skip
            print(f"fairness {mode}: {results[mode][-1]}", file=sys.stderr)
    return results


async def priority(url: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"priority 100": [], "priority 0 (FIFO)": []}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for mode in list(results) * args.repeat:
            await empty(conn)
            await insert(conn, args.backlog, "backlog")
            await conn.execute("ANALYZE automate_outbox_job")
            stop = asyncio.Event()
            high: list[int] = []
            level = 100 if mode == "priority 100" else 0

            async def urgent(level: int = level, stop: asyncio.Event = stop, high: list[int] = high) -> None:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as u:
                    while not stop.is_set():
                        high.extend(await insert(u, 1, "urgent", priority=level))
                        await asyncio.sleep(0.2)

            async def watch(stop: asyncio.Event = stop) -> None:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as w:
                    while True:
                        left = (await (await w.execute(
                            "SELECT count(*) FROM automate_outbox_job WHERE status IN ('ready','retry')"
                        )).fetchone() or [0])[0]  # fmt: skip
                        if left <= 1:
                            stop.set()
                            return
                        await asyncio.sleep(0.5)

            sender = asyncio.create_task(urgent())
            watcher = asyncio.create_task(watch())
            jobs, seconds = await drain(
                url, stop.is_set, drainers=args.drainers, batch=args.batch, work=args.work
            )
            await sender
            await watcher
            waits = [float(r[0]) for r in await (await conn.execute(WAITS, {"ids": high})).fetchall()]
            results[mode].append(
                {"urgent_jobs": len(waits), "latency_p50": pct(waits, 50), "latency_p99": pct(waits, 99),
                 "drain_seconds": round(seconds, 1), "jobs_per_second": round(jobs / seconds)}
            )  # fmt: skip
            print(f"priority {mode}: {results[mode][-1]}", file=sys.stderr)
    return results


async def drain_cost(url: str, args: argparse.Namespace) -> dict[str, Any]:
    modes = {
        "A: before 0013 (FIFO claim, old index)": (BEFORE_0013, queries.CLAIM_BATCH_FIFO, {}),
        "B: claim order, every queue": (AFTER_0013, queries.CLAIM_BATCH, {}),
        "C: claim order, --queue default": (AFTER_0013, queries.CLAIM_BATCH_QUEUE, {"queue": "default"}),
        "D: claim order, --queue default --queue other": (
            AFTER_0013,
            queries.CLAIM_BATCH_QUEUES,
            {"queues": ["default", "other"]},
        ),
    }
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(args.repeat):
            for mode, (schema, claim, extra) in modes.items():
                await empty(conn)
                await conn.execute(schema)
                await conn.execute("VACUUM ANALYZE automate_outbox_job")
                started = time.monotonic()
                for _chunk in range(args.backlog // 10_000):  # as ingest writes: many statements
                    await insert(conn, 10_000, "drain")
                inserted = time.monotonic() - started
                await conn.execute("ANALYZE automate_outbox_job")
                jobs, seconds = await drain(
                    url, lambda: True, drainers=args.drainers, batch=args.batch, work=0.0,
                    claim=claim, extra=extra,
                )  # fmt: skip
                results[mode].append(
                    {
                        "jobs": jobs,
                        "jobs_per_second": round(jobs / seconds),
                        "insert_seconds": round(inserted, 2),
                    }
                )
                print(f"drain {mode}: {results[mode][-1]}", file=sys.stderr)
        await conn.execute(AFTER_0013)
    summary = {m: {"median_jobs_per_second": statistics.median(r["jobs_per_second"] for r in rows),
                   "median_insert_seconds": statistics.median(r["insert_seconds"] for r in rows),
                   "runs": rows}
               for m, rows in results.items()}  # fmt: skip
    base = summary["A: before 0013 (FIFO claim, old index)"]["median_jobs_per_second"]
    for m in summary:
        summary[m]["ratio_to_A"] = round(summary[m]["median_jobs_per_second"] / base, 3)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="fairness,priority,drain")
    parser.add_argument("--flood", type=int, default=50_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--drainers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--work", type=float, default=0.04)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit(
            "set DATABASE_URL or --database-url (a server where a *_bench database may be created)"
        )
    url = bench_url(args.database_url)
    prepare(url)
    report: dict[str, Any] = {"settings": vars(args) | {"database_url": "(bench)"}}
    wanted = args.only.split(",")
    if "fairness" in wanted:
        report["fairness"] = asyncio.run(fairness(url, args))
    if "priority" in wanted:
        report["priority"] = asyncio.run(priority(url, args))
    if "drain" in wanted:
        report["drain"] = asyncio.run(drain_cost(url, args))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
