"""``automate bench``: the benchmark harnesses (``benchmarks/`` in a checkout).

``automate bench outbox``
    drains N jobs with W worker processes and reports jobs/s (``benchmarks/outbox``); with
    ``--compare-peer pgqueuer`` it runs pgqueuer's no-op drain on the same database, alternated
    with ours, and prints the ratios pair by pair.
``automate bench e2e``
    sends signed webhooks at a fixed rate to ``automate serve`` + ``automate worker`` started as
    deployed and reports webhook-to-run-finished latency and the queue depth (``benchmarks/e2e``).

The harnesses live with the benchmarks, outside the installed package; this command finds the
source checkout the package was installed from (``pip install -e``) and runs them. See
docs/benchmarks.md for what each measures and the commands behind the published figures.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO

from automate_core.exceptions import ConfigurationError

HELP = "Benchmarks: `outbox` (jobs/s of a drain, against raw SQL or pgqueuer) and `e2e` (webhooks at a rate)."

CHECKOUT = Path(__file__).resolve().parents[3]
PEERS = ("pgqueuer",)


def add_arguments(parser: ArgumentParser) -> None:
    suites = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")
    outbox = suites.add_parser("outbox", help="Drain N jobs with W worker processes; jobs/s and ratios.")
    add_outbox_arguments(outbox)
    e2e = suites.add_parser("e2e", help="Signed webhooks at a fixed rate through serve + worker.")
    add_e2e_arguments(e2e)


def add_database_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        help="The benchmark's database (its name must contain 'bench'); without it: DATABASE_URL's "
        "database + _bench. Given, no embedded PostgreSQL is started.",
    )


def add_outbox_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("-n", "--jobs", type=int, default=100_000, help="Jobs per run.")
    parser.add_argument("-w", "--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument(
        "-c", "--concurrency", type=int, default=None,
        help="Jobs run at once per process (default: the worker's, AUTOMATE_WORKER_CONCURRENCY).",
    )  # fmt: skip
    parser.add_argument(
        "-b", "--batch-size", type=int, default=None,
        help="Most jobs per claim (default: the worker's, AUTOMATE_WORKER_BATCH_SIZE).",
    )  # fmt: skip
    parser.add_argument(
        "--modes",
        default="engine,sql",
        help="Comma-separated: engine (automate worker), noop (worker without engine), sql (raw SQL).",
    )
    parser.add_argument("-r", "--repeat", type=int, default=1, help="Runs per mode (medians are reported).")
    parser.add_argument("--history", type=int, default=0, help="Completed jobs kept in the table.")
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="Day partitions beyond the days ahead, as a deployment retaining that many days has "
        "(the planner's work grows with them).",
    )
    parser.add_argument(
        "--compare-history",
        action="store_true",
        help="Run every mode on an empty table and on one with --history jobs (own database), "
        "alternating which goes first.",
    )
    parser.add_argument(
        "--compare-peer",
        choices=PEERS,
        default="",
        help="Also drain N no-op jobs with this peer on the same database, alternated with our modes "
        "(needs the bench extra: pip install 'django-automate[bench]').",
    )
    parser.add_argument("--peer-tasks", type=int, default=5, help="The peer's dequeue tasks (connections).")
    parser.add_argument("--peer-batch-size", type=int, default=100, help="The peer's jobs per dequeue.")
    parser.add_argument("--rate", type=float, default=0.0, help="Feed events at this rate (per second).")
    add_database_argument(parser)
    parser.add_argument("--out", default=None, help="Directory for the JSON and PNG results.")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--pool-size", type=int, default=16, help="Connections per worker process.")
    parser.add_argument("--linger", type=float, default=0.002, help="Settle linger (seconds).")
    parser.add_argument("--sql-concurrency", type=int, default=4, help="Connections per sql-mode process.")


def add_e2e_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=2000.0, help="Webhooks per second (open loop).")
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of sending.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Seconds of sending before measuring.")
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="Most seconds to wait for runs after sending."
    )
    parser.add_argument("--connections", type=int, default=64, help="Most connections the sender opens.")
    parser.add_argument(
        "--platform",
        choices=["deployed", "up"],
        default="deployed",
        help="deployed: automate serve + automate worker (default); up: automate up, one process.",
    )
    parser.add_argument(
        "--seed", type=int, default=100_000, help="Completed events and jobs kept in the tables (analysed)."
    )
    add_database_argument(parser)
    parser.add_argument("--out", default=None, help="Directory for the JSON result.")


def checkout() -> None:
    if not (CHECKOUT / "benchmarks" / "outbox" / "harness.py").exists():
        raise ConfigurationError(
            "automate bench runs the scripts in benchmarks/ of a source checkout; install Django "
            "Automate from one (pip install -e .) and run it there."
        )
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))


def base_url(options: dict[str, Any]) -> str:
    base = options["database_url"] or os.environ.get("DATABASE_URL", "")
    if not base:
        raise ConfigurationError(
            "Set DATABASE_URL (the benchmark uses <its database>_bench next to it) or pass --database-url."
        )
    return str(base)


def run(options: dict[str, Any], out: TextIO) -> int:
    checkout()
    if options["suite"] == "e2e":
        return run_e2e(options, out)
    return run_outbox(options, out)


def run_outbox(options: dict[str, Any], out: TextIO) -> int:
    from benchmarks.databases import bench_url
    from benchmarks.outbox import harness

    base = base_url(options)
    modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
    unknown = set(modes) - {"engine", "noop", "sql"}
    if unknown:
        raise ConfigurationError(f"Unknown mode(s) {', '.join(sorted(unknown))}: use engine, noop, sql.")
    peer = options["compare_peer"]
    if peer:
        if options["rate"]:
            raise ConfigurationError("--compare-peer compares drains: leave --rate out.")
        missing = [m for m in ("pgqueuer", "asyncpg") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigurationError(
                f"--compare-peer {peer} needs {' and '.join(missing)}: pip install 'django-automate[bench]'."
            )
    from automate_core.conf import settings

    if options["history_days"] < 0:
        raise ConfigurationError("--history-days must be 0 or more.")
    concurrency, batch_size = options["concurrency"], options["batch_size"]  # None: the worker's
    config = harness.BenchConfig(
        jobs=options["jobs"],
        workers=options["workers"],
        concurrency=int(settings.WORKER_CONCURRENCY if concurrency is None else concurrency),
        batch_size=int(settings.WORKER_BATCH_SIZE if batch_size is None else batch_size),
        history_days=options["history_days"],
        modes=modes,
        repeat=options["repeat"],
        history=options["history"],
        rate=options["rate"],
        database_url=options["database_url"]
        or bench_url(base, history=options["history"] > 0 and not options["compare_history"]),
        out_dir=Path(options["out"]) if options["out"] else harness.HERE / "results",
        chart=not options["no_chart"],
        pool_size=options["pool_size"],
        linger=options["linger"],
        sql_concurrency=options["sql_concurrency"],
        compare_history=options["compare_history"],
        peer=peer,
        peer_tasks=options["peer_tasks"],
        peer_batch_size=options["peer_batch_size"],
    )
    if config.compare_history and not config.history:
        raise ConfigurationError("--compare-history needs --history N (completed jobs to keep).")
    harness.main(config, base, out)
    return 0


def run_e2e(options: dict[str, Any], out: TextIO) -> int:
    from benchmarks.databases import bench_url
    from benchmarks.e2e import harness as e2e

    base = base_url(options)
    if options["rate"] <= 0 or options["duration"] <= 0:
        raise ConfigurationError("--rate and --duration must be positive.")
    config = e2e.E2EConfig(
        rate=options["rate"],
        duration=options["duration"],
        warmup=options["warmup"],
        drain_timeout=options["drain_timeout"],
        connections=options["connections"],
        seed=options["seed"],
        platform=options["platform"],
        database_url=options["database_url"] or bench_url(base),
        out_dir=Path(options["out"]) if options["out"] else e2e.HERE / "results",
    )
    return e2e.main(config, base, out)
