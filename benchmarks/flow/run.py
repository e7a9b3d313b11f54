"""Durable waits at scale: memory and rows per waiting run, wake-up lag, correlation cost.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/automate \\
        .venv/bin/python -m benchmarks.flow.run --runs 100000 --due 10000 --waits 100000

Works in ``<DATABASE_URL's database>_bench`` (created, emptied). Three measurements:

1. **Parking**: ``--runs`` events whose workflow sleeps first; two in-process worker pools at the
   default settings park them all. Reported: parking rate, the worker's RSS before and after
   (a waiting run holds nothing in a worker), and rows and bytes per waiting run in PostgreSQL.
2. **Wake-up lag**: ``--due`` of those timers fall due in the same second; the lag of each is
   the time from its deadline to its run's wake (the sleep step's outcome record), p50/p99.
3. **Correlation**: the ``MATCH_EVENT`` statement for an incoming event against ``--waits`` open
   ``wait_for_event`` waits and against 1,000, alternated; median per statement and their ratio
   (an index lookup stays flat as the waits grow).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "automate"), str(ROOT)]

from benchmarks.databases import admin_url, bench_url, django_url  # noqa: E402

WORKFLOW = """
workflows:
  - name: nap
    trigger: {source: bench, event_type: sleep}
    steps:
      - {name: nap, sleep: {for: 1d}}
      - {name: after, connector: log, action: debug, params: {message: "woke"}}
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = admin_url(url, name)
    with psycopg.connect(admin, autocommit=True) as conn:
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
    import yaml

    from automate_core import definitions

    definitions.load(yaml.safe_load(WORKFLOW))


def insert_events(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            WITH e AS (
                INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
                SELECT 'bench', 'sleep', jsonb_build_object('n', g), '{}'::jsonb,
                       md5(g::text || clock_timestamp()::text), now()
                FROM generate_series(1, %(n)s) AS g
                RETURNING id
            )
            INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts,
                                             available_at, lease_owner, last_error, created_at, updated_at)
            SELECT id, 'event', 'ready', 0, 5, now(), '', '', now(), now() FROM e
            """,
            {"n": n},
        )


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


async def work_until(done: object, within: float) -> float:
    from automate_core.worker.pool import WorkerOptions, WorkerPool

    pools = [WorkerPool(WorkerOptions.from_settings()) for _ in range(2)]
    tasks = [asyncio.create_task(p.run()) for p in pools]
    started = time.monotonic()
    try:
        # the state is in the database, written by the pools: poll it
        while time.monotonic() - started < within and not await asyncio.to_thread(done):  # type: ignore[arg-type]  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    finally:
        for p in pools:
            p.stop()
        await asyncio.gather(*tasks)
    return time.monotonic() - started


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
            "('automate_run', 'automate_run_wait', 'automate_outbox_job', 'automate_step_run')"
        ).fetchall()
    return {name: int(size) for name, size in rows}


def park(url: str, runs: int) -> dict[str, object]:
    insert_events(url, runs)
    before_rss = rss_mb()
    before = sizes(url)
    elapsed = asyncio.run(
        work_until(lambda: count(url, "SELECT count(*) FROM automate_run_wait") >= runs, 1800)
    )
    after = sizes(url)
    waiting = count(url, "SELECT count(*) FROM automate_run WHERE status = 'waiting'")
    grown = sum(after.values()) - sum(before.values())
    return {
        "waiting_runs": waiting,
        "parked_per_second": round(waiting / elapsed, 1),
        "rows_per_waiting_run": "1 run + 1 wait + 1 wake job + 1 step record (+ the event and its job)",
        "bytes_per_waiting_run": round(grown / max(waiting, 1)),
        "worker_rss_mb_before_after": [round(before_rss, 1), round(rss_mb(), 1)],
    }


def wake(url: str, due: int) -> dict[str, object]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            WITH chosen AS (
                SELECT id, job_id FROM automate_run_wait WHERE status = 'open' ORDER BY id LIMIT %(due)s
            ), moved AS (
                UPDATE automate_run_wait AS w SET deadline = date_trunc('second', now()) + interval '3 s'
                FROM chosen WHERE w.id = chosen.id RETURNING w.job_id
            )
            UPDATE automate_outbox_job AS j SET available_at = date_trunc('second', now()) + interval '3 s'
            FROM moved WHERE j.id = moved.job_id
            """,
            {"due": due},
        )
    elapsed = asyncio.run(
        work_until(
            lambda: count(url, "SELECT count(*) FROM automate_run WHERE status = 'succeeded'") >= due, 600
        )
    )
    with psycopg.connect(url) as conn:
        lags = [
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM s.finished_at - w.deadline) FROM automate_run_wait w "
                "JOIN automate_step_run s ON s.run_id = w.run_id AND s.name = w.step_name "
                "AND s.status = 'succeeded' WHERE w.status = 'timed_out'"
            ).fetchall()
        ]
    lags.sort()
    return {
        "woken": len(lags),
        "lag_p50_ms": round(1000 * lags[len(lags) // 2], 1) if lags else None,
        "lag_p99_ms": round(1000 * lags[int(len(lags) * 0.99) - 1], 1) if lags else None,
        "all_woken_within_s": round(elapsed, 1),
    }


def match_cost(url: str, waits: int, rounds: int = 5, per_round: int = 200) -> dict[str, object]:
    from automate_core.execution import wait_queries

    def fill(conn: psycopg.Connection, event_type: str, n: int) -> None:
        conn.execute(  # synthetic waits of runs that do not exist (negative ids), one step name each
            "INSERT INTO automate_run_wait (run_id, step_name, kind, status, source, event_type, path, "
            "value, prompt, on_timeout, resolved_by, created_at) SELECT -g, %(t)s, 'event', 'open', "
            "'bench', %(t)s, 'order', g::text, '', 'continue', '', now() FROM generate_series(1, %(n)s) g",
            {"t": event_type, "n": n},
        )

    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, "big", waits)
        fill(conn, "small", 1000)
        conn.execute("ANALYZE automate_run_wait")
        medians: dict[str, list[float]] = {"big": [], "small": []}
        for r in range(rounds):
            for event_type in ("big", "small") if r % 2 == 0 else ("small", "big"):
                times = []
                for i in range(per_round):
                    payload = json.dumps({"order": -(i + 1)})  # matches nothing: the wait stays open
                    started = time.perf_counter()
                    params = {"paths": ["order"], "event_id": 1, "source": "bench",
                              "event_type": event_type, "payload": payload}  # fmt: skip
                    conn.execute(wait_queries.MATCH_EVENT, params)
                    times.append(time.perf_counter() - started)
                medians[event_type].append(statistics.median(times))
    big, small = statistics.median(medians["big"]), statistics.median(medians["small"])
    return {"open_waits": waits, "match_ms": round(big * 1000, 3),
            "match_ms_1000_waits": round(small * 1000, 3), "ratio": round(big / small, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--waits", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit(
            "set DATABASE_URL or --database-url (a server where a *_bench database may be created)"
        )
    url = bench_url(args.database_url)
    prepare(url)
    report = {"parking": park(url, args.runs), "wake": wake(url, min(args.due, args.runs)),
              "correlation": match_cost(url, args.waits)}  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
