"""Worker processes of the two reference modes of ``automate bench outbox``.

``python -m benchmarks.outbox.procs noop --concurrency C --batch-size B``
    The real ``WorkerPool`` (claims, leases, heartbeats, batched settlements) with a dispatcher
    that completes every job without running it: what the worker machinery costs by itself.

``python -m benchmarks.outbox.procs sql --concurrency C --batch-size B``
    The raw-SQL baseline: C loops, each on its own connection, claiming B jobs with the outbox's
    own ``CLAIM_BATCH`` and completing them at once with ``COMPLETE``. No engine, no pool, no
    tasks: what this database allows our statements from Python, the ceiling for the ratio.

The engine mode is the real ``automate worker`` command. All stop on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

import django


async def sql_loop(url: str, batch: int, owner: str, stop: asyncio.Event) -> int:
    import psycopg

    from automate_core.outbox import queries

    done = 0
    claim = {"limit": batch, "owner": owner, "lease": 30.0}
    from automate_core import db

    # autocommit, and no prepared statements behind a transaction pooler (as the platform's pool)
    async with await psycopg.AsyncConnection.connect(url, **db.connection_kwargs()) as conn:
        while not stop.is_set():
            cur = await conn.execute(queries.CLAIM_BATCH, claim)
            rows = await cur.fetchall()
            if not rows:
                await asyncio.sleep(0.05)
                continue
            settle: dict[str, Any] = {
                "ids": [r[0] for r in rows],
                "attempts": [r[2] for r in rows],
                "results": [None] * len(rows),
                "owner": owner,
            }
            await conn.execute(queries.COMPLETE, settle)
            done += len(rows)
    return done


async def run_sql(concurrency: int, batch: int) -> None:
    from automate_core import db

    url = db.conninfo() + " application_name=automate-bench-sql"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    owner = f"bench-sql:{os.getpid()}"
    await asyncio.gather(*(sql_loop(url, batch, f"{owner}:{i}", stop) for i in range(concurrency)))


async def run_noop(concurrency: int, batch: int) -> None:
    from automate_core import db
    from automate_core.worker.dispatch import NoopDispatcher
    from automate_core.worker.pool import WorkerOptions, WorkerPool

    pool = WorkerPool(
        WorkerOptions.from_settings(concurrency=concurrency, batch_size=batch, maintenance=False),
        dispatcher=NoopDispatcher(),
    )
    pool.install_signal_handlers()
    try:
        await pool.run()
    finally:
        await db.close_pool()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("mode", choices=["noop", "sql"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.outbox.settings")
    django.setup()
    runner = {"sql": run_sql, "noop": run_noop}[args.mode]
    asyncio.run(runner(args.concurrency, args.batch_size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
