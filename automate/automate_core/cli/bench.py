"""``automate bench outbox``: the outbox throughput harness (``benchmarks/outbox`` in a checkout).

The harness lives with the benchmarks, outside the installed package; this command finds the source
checkout the package was installed from (``pip install -e``) and runs it. See
docs/benchmarks/outbox.md for what it measures and the commands behind the published figures.
"""

from __future__ import annotations

import os
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO

from automate_core.exceptions import ConfigurationError

HELP = "Benchmarks: `automate bench outbox` drains N jobs with W worker processes and reports jobs/s."

CHECKOUT = Path(__file__).resolve().parents[3]


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("suite", choices=["outbox"], help="What to measure.")
    parser.add_argument("-n", "--jobs", type=int, default=100_000, help="Jobs per run.")
    parser.add_argument("-w", "--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument("-c", "--concurrency", type=int, default=32, help="Jobs run at once per process.")
    parser.add_argument("-b", "--batch-size", type=int, default=100, help="Most jobs per claim.")
    parser.add_argument(
        "--modes",
        default="engine,sql",
        help="Comma-separated: engine (automate worker), noop (worker without engine), sql (raw SQL).",
    )
    parser.add_argument("-r", "--repeat", type=int, default=1, help="Runs per mode (medians are reported).")
    parser.add_argument("--history", type=int, default=0, help="Completed jobs kept in the table.")
    parser.add_argument(
        "--compare-history",
        action="store_true",
        help="Run every mode twice in a row: empty table, then --history jobs (own database).",
    )
    parser.add_argument("--rate", type=float, default=0.0, help="Feed events at this rate (per second).")
    parser.add_argument(
        "--database-url", default=None, help="Default: DATABASE_URL's database + _bench (+ _history)."
    )
    parser.add_argument("--out", default=None, help="Directory for the JSON and PNG results.")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--pool-size", type=int, default=16, help="Connections per worker process.")
    parser.add_argument("--linger", type=float, default=0.002, help="Settle linger (seconds).")
    parser.add_argument("--sql-concurrency", type=int, default=4, help="Connections per sql-mode process.")


def run(options: dict[str, Any], out: TextIO) -> int:
    if not (CHECKOUT / "benchmarks" / "outbox" / "harness.py").exists():
        raise ConfigurationError(
            "automate bench runs the scripts in benchmarks/ of a source checkout; install Django "
            "Automate from one (pip install -e .) and run it there."
        )
    sys.path.insert(0, str(CHECKOUT))
    from benchmarks.outbox import harness

    base = os.environ.get("DATABASE_URL", "")
    if not base and not options["database_url"]:
        raise ConfigurationError("Set DATABASE_URL (the benchmark uses <its database>_bench next to it).")
    modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
    unknown = set(modes) - {"engine", "noop", "sql"}
    if unknown:
        raise ConfigurationError(f"Unknown mode(s) {', '.join(sorted(unknown))}: use engine, noop, sql.")
    config = harness.BenchConfig(
        jobs=options["jobs"],
        workers=options["workers"],
        concurrency=options["concurrency"],
        batch_size=options["batch_size"],
        modes=modes,
        repeat=options["repeat"],
        history=options["history"],
        rate=options["rate"],
        database_url=options["database_url"]
        or harness.bench_url(base, history=options["history"] > 0 and not options["compare_history"]),
        out_dir=Path(options["out"]) if options["out"] else harness.HERE / "results",
        chart=not options["no_chart"],
        pool_size=options["pool_size"],
        linger=options["linger"],
        sql_concurrency=options["sql_concurrency"],
        compare_history=options["compare_history"],
    )
    if config.compare_history and not config.history:
        raise ConfigurationError("--compare-history needs --history N (completed jobs to keep).")
    harness.main(config, options["database_url"] or base, out)
    return 0
