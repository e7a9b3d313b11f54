from __future__ import annotations

import asyncio
from argparse import ArgumentParser
from typing import Any, TextIO

HELP = "Run an outbox worker: claim jobs, run workflows and tasks, until SIGTERM/SIGINT."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=None, help="Jobs run at once.")
    parser.add_argument("--batch-size", type=int, default=None, help="Most jobs per claim.")
    parser.add_argument("--poll-interval", type=float, default=None, help="Seconds between polls.")
    parser.add_argument("--lease", type=float, default=None, help="Lease seconds per claim.")
    parser.add_argument(
        "--shutdown-timeout", type=float, default=None, help="Seconds running jobs may finish on SIGTERM."
    )
    parser.add_argument(
        "--rescue-interval", type=float, default=None, help="Seconds between rescues of expired leases."
    )
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        default=None,
        metavar="NAME",
        help="Claim only from this queue (repeat for several; default $AUTOMATE_WORKER_QUEUES, "
        "empty: every queue).",
    )
    parser.add_argument(
        "--no-maintenance", action="store_true", help="Run no rescuer and no retention passes here."
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Serve /healthz, /readyz and /metrics on this port of AUTOMATE_WORKER_METRICS_HOST "
        "(default $AUTOMATE_WORKER_METRICS_PORT; 0 = off).",
    )


async def serve_worker(options: dict[str, Any]) -> None:
    from automate_core import db
    from automate_core.observability.process import start_worker_observability
    from automate_core.worker.pool import WorkerOptions, WorkerPool

    pool = WorkerPool(
        WorkerOptions.from_settings(
            concurrency=options.get("concurrency"),
            batch_size=options.get("batch_size"),
            poll_interval=options.get("poll_interval"),
            lease_seconds=options.get("lease"),
            shutdown_timeout=options.get("shutdown_timeout"),
            rescue_interval=options.get("rescue_interval"),
            maintenance=False if options.get("no_maintenance") else None,
            queues=tuple(options["queues"]) if options.get("queues") else None,
        )
    )
    pool.install_signal_handlers()
    from automate_core import heap

    heap.freeze_startup()  # imported and built: what lives as long as the process
    # the loop monitor, and the ops server when a port is set (docs/operations.md)
    observer = await start_worker_observability(options.get("metrics_port"))
    from automate_core.schedules import service as schedules

    scheduler = asyncio.create_task(schedules.run(pool.stopping), name="automate-scheduler")
    try:
        await pool.run()
    finally:
        await scheduler
        await observer.stop()
        await db.close_pool()


def run(options: dict[str, Any], out: TextIO) -> int:
    asyncio.run(serve_worker(options))
    return 0
