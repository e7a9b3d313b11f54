"""The outbox throughput harness behind ``automate bench outbox``.

One run: empty the benchmark database's outbox (keeping any synthetic history), enqueue N events
for a one-step workflow with a no-op async connector, start W worker processes of concurrency C,
wait until every job is completed, stop them, and read everything that happened from the
database itself: jobs/s from first to last completion, end-to-end latency (the job's creation,
which is the ingest commit, to its completion), transactions per job (``pg_stat_database``),
throughput over time, and checks that every job completed once with its run records.

Modes (several per invocation, so the result reads as a ratio measured side by side):

* ``engine``: ``automate worker`` processes: rules, templates, connector, ExecutionRun + StepRun.
* ``noop``: the same worker machinery with a dispatcher that completes jobs without running them.
* ``sql``: the raw-SQL baseline: claim + complete loops with the outbox's own statements.


``--compare-peer pgqueuer`` adds pgqueuer's no-op drain (``benchmarks/peers/pgqueuer_drain.py``)
on the same database, alternated with our modes; the report gives each of our modes' ratio to it,
pair by pair, and the median of those ratios.

``--rate R`` feeds events at R/s while the workers run (latency is then meaningful) instead of
draining a backlog; ``--history H`` keeps H completed jobs in the table, to show that claim
speed does not depend on history. The benchmark uses its own database (``<name>_bench`` next to
``DATABASE_URL``'s, created when missing) and refuses one whose name lacks "bench": it empties the
outbox tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from benchmarks.databases import admin_url, bench_url, django_url, migrate_and_load
from benchmarks.outbox import queries

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AUTOMATE = str(Path(sys.executable).with_name("automate"))


@dataclass
class BenchConfig:
    jobs: int = 100_000
    workers: int = 2
    concurrency: int = 32
    batch_size: int = 100
    modes: list[str] = field(default_factory=lambda: ["engine", "sql"])
    repeat: int = 1
    history: int = 0
    history_days: int = 0  # day partitions beyond the days ahead (benchmarks.history.days)
    rate: float = 0.0
    database_url: str = ""
    out_dir: Path = HERE / "results"
    chart: bool = True
    pool_size: int = 16
    linger: float = 0.002
    sql_concurrency: int = 4
    timeout: float = 0.0  # 0: derived from the job count
    compare_history: bool = False  # run each mode on an empty table and on one with `history` jobs
    peer: str = ""  # "pgqueuer": its no-op drain on the same database, alternated with ours
    peer_tasks: int = 5  # the peer's dequeue tasks (one connection each)
    peer_batch_size: int = 100


@dataclass
class RunResult:
    mode: str
    run: int
    jobs: int
    completed: int
    retried: int
    seconds: float  # first to last completion
    jobs_per_second: float
    wall_seconds: float  # worker processes started to all completed (includes their start-up)
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    transactions: int
    transactions_per_job: float
    runs_recorded: int
    steps_recorded: int
    series: list[tuple[float, float]]


class Harness:
    def __init__(self, config: BenchConfig, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.config = config
        self.url = config.database_url
        if "bench" not in str(conninfo_to_dict(self.url).get("dbname", "")):
            raise SystemExit("The benchmark empties the outbox: its database's name must contain 'bench'.")
        self.out, self.err = out, err
        self.sent = 0  # events fed so far (--rate)
        self.env = {
            **os.environ,
            "DATABASE_URL": self.url_for_django(),
            "DJANGO_SETTINGS_MODULE": "benchmarks.outbox.settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key-0123456789abcdefghijklmnop",
            "BENCH_DB_POOL_MAX_SIZE": str(config.pool_size),
            "BENCH_SETTLE_LINGER": str(config.linger),
        }

    def url_for_django(self) -> str:
        return django_url(self.url)

    def connect(self) -> psycopg.Connection[Any]:
        from automate_core import db

        # autocommit, and no prepared statements behind a transaction pooler (as the platform's pool)
        return psycopg.connect(self.url, **db.connection_kwargs(), application_name="automate-bench-harness")

    # -- preparation --------------------------------------------------------------------------

    def prepare(self, base_url: str) -> None:
        name = str(conninfo_to_dict(self.url)["dbname"])
        with psycopg.connect(admin_url(base_url, name), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                self.say(f"created database {name}")
        migrate_and_load(self.env, HERE / "workflow.yaml")
        if self.config.history_days:
            from automate_core.conf import settings
            from benchmarks.history import days

            ahead = int(settings.HISTORY_PARTITIONS_AHEAD)
            count = days.ensure_days(self.url, self.config.history_days, ahead)
            self.say(f"{count} day partitions per history table (--history-days {self.config.history_days})")
        if self.config.history:
            self.ensure_history(self.config.history)

    def ensure_history(self, n: int) -> None:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM automate_outbox_job WHERE created_at < %s", [queries.HISTORY_BEFORE]
            ).fetchone()
            have = int(row[0]) if row else 0
            if have == n:
                return
            self.say(f"building a history of {n:,} completed jobs (once; kept between runs)")
            conn.execute("DELETE FROM automate_outbox_job WHERE created_at < %s", [queries.HISTORY_BEFORE])
            from automate_core.history import settled

            day = dt.date.fromisoformat(queries.HISTORY_DAY)
            made = conn.execute("SELECT to_regclass(%s)", [settled.partition(day)]).fetchone()
            if made is None or made[0] is None:
                for statement in settled.create_partition(day):
                    conn.execute(statement.encode())
            left = n
            while left > 0:
                chunk = min(left, 1_000_000)
                conn.execute(queries.HISTORY, {"n": chunk})
                left -= chunk
                self.say(f"  {n - left:,} / {n:,}")
            conn.execute("VACUUM (ANALYZE) automate_outbox_job")

    def reset(self) -> None:
        """Empty the tables of the last run (history stays).

        The run tables are truncated and NOT analysed: statistics saying "empty" make PostgreSQL
        plan the foreign-key checks of step runs (on automate_run) as sequential scans, cache that
        plan in every worker connection, and then each insert scans a growing table (this drain
        slowed from 2.7 to 0.9 thousand jobs/s before this was found). The outbox and events are
        analysed once they hold the new backlog (``run_once``).
        """
        with self.connect() as conn:
            if self.config.history:
                conn.execute("TRUNCATE automate_step_run, automate_run")
                conn.execute(
                    "DELETE FROM automate_outbox_job WHERE created_at >= %s", [queries.HISTORY_BEFORE]
                )
                conn.execute("DELETE FROM automate_event")
                conn.execute("VACUUM automate_outbox_job")
                conn.execute("VACUUM automate_event")
            else:
                conn.execute("TRUNCATE automate_step_run, automate_run, automate_outbox_job, automate_event")

    def enqueue(self, conn: psycopg.Connection[Any], first: int, n: int) -> None:
        conn.execute(queries.ENQUEUE, {"first": first, "n": n})

    # -- one run ------------------------------------------------------------------------------

    def worker_command(self, mode: str) -> list[str]:
        c = self.config
        if mode == "engine":
            flags = ["--concurrency", str(c.concurrency), "--batch-size", str(c.batch_size)]
            return [AUTOMATE, "worker", *flags, "--no-maintenance"]
        concurrency = c.sql_concurrency if mode == "sql" else c.concurrency
        return [sys.executable, "-m", "benchmarks.outbox.procs", mode,
                "--concurrency", str(concurrency), "--batch-size", str(c.batch_size)]  # fmt: skip

    def run_once(self, mode: str, index: int) -> RunResult:
        c = self.config
        self.reset()
        with self.connect() as conn:
            since = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            if not c.rate:
                for first in range(1, c.jobs + 1, 50_000):
                    self.enqueue(conn, first, min(50_000, c.jobs - first + 1))
                conn.execute("ANALYZE automate_outbox_job")
                conn.execute("ANALYZE automate_event")
            conn.execute("CHECKPOINT")
            commits_before = self.commits(conn)
            started = time.monotonic()
            polls = self.drain(conn, mode, index, started)
            wall = time.monotonic() - started
            time.sleep(0.5)  # exited backends flush their statistics
            commits = self.commits(conn) - commits_before - polls - 1
            return self.collect(conn, mode, index, since, wall, commits)

    def drain(self, conn: psycopg.Connection[Any], mode: str, index: int, started: float) -> int:
        """Start the worker processes, watch them drain the outbox, stop them; returns the polls made."""
        c = self.config
        with contextlib.ExitStack() as stack:
            logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(c.workers)]
            command = self.worker_command(mode)
            procs = [
                subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT) for log in logs
            ]
            try:
                if c.rate:
                    self.wait_for_workers(conn, procs)
                    threading.Thread(target=self.produce, daemon=True).start()
                return self.watch(conn, procs, mode, index, started)
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                for proc, log in zip(procs, logs, strict=True):
                    proc.wait(60)
                    if proc.returncode not in (0, -signal.SIGTERM):
                        log.seek(0)
                        output = log.read().decode(errors="replace")[-3000:]
                        self.say(f"worker process {proc.pid} failed:\n{output}")

    def commits(self, conn: psycopg.Connection[Any]) -> int:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0

    def wait_for_workers(self, conn: psycopg.Connection[Any], procs: list[subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(DISTINCT client_port) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name IN ('django-automate', 'automate-bench-sql')"
            ).fetchone()
            if row and row[0] >= len(procs):
                time.sleep(0.5)
                return
            time.sleep(0.1)

    def produce(self) -> None:
        """Insert events at ``rate`` per second, in small batches every 20 ms, until N are in."""
        c = self.config
        per_tick = max(1, round(c.rate / 50))
        with self.connect() as conn:
            self.sent, tick = 0, time.monotonic()
            while self.sent < c.jobs:
                n = min(per_tick, c.jobs - self.sent)
                self.enqueue(conn, self.sent + 1, n)
                self.sent += n
                tick += n / c.rate
                time.sleep(max(0.0, tick - time.monotonic()))

    def watch(
        self, conn: psycopg.Connection[Any], procs: list[subprocess.Popen[bytes]], mode: str, index: int,
        started: float,
    ) -> int:  # fmt: skip
        """Show progress until every job is completed; returns how many polls it made."""
        c = self.config
        timeout = c.timeout or max(120.0, c.jobs / 200 + (c.jobs / c.rate if c.rate else 0))
        polls = 0
        last_done, last_at = 0, time.monotonic()
        while True:
            time.sleep(0.5)
            row = conn.execute(queries.PENDING).fetchone()
            polls += 1
            left = int(row[0]) if row else 0
            inserted = c.jobs if not c.rate else self.sent
            done = inserted - left
            now = time.monotonic()
            rate = (done - last_done) / (now - last_at)
            last_done, last_at = done, now
            self.progress(mode, index, done, rate, now - started)
            if done >= c.jobs:
                self.err.write("\n")
                return polls
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a worker process exited before the outbox was drained")
            if now - started > timeout:
                raise SystemExit(f"not drained after {timeout:.0f}s ({done:,} of {c.jobs:,} completed)")

    def progress(self, mode: str, index: int, done: int, rate: float, elapsed: float) -> None:
        total, width = self.config.jobs, 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        self.err.write(
            f"\r  {mode:<6} run {index + 1}/{self.config.repeat} [{bar}] {done:>9,}/{total:,} "
            f"{rate:>9,.0f} jobs/s {elapsed:6.1f}s"
        )
        self.err.flush()

    def collect(
        self, conn: psycopg.Connection[Any], mode: str, index: int, since: datetime, wall: float, commits: int
    ) -> RunResult:
        row = conn.execute(queries.RESULTS, {"since": since}).fetchone()
        assert row is not None
        completed, retried, first, last, (p50, p99), worst = row
        seconds = max((last - first).total_seconds(), 1e-9)
        bucket = max(0.1, round(seconds / 100, 2))
        series = [
            (slot * bucket, count / bucket)
            for slot, count in conn.execute(
                queries.SERIES, {"first": first, "bucket": bucket, "since": since}
            )
        ]
        runs = conn.execute("SELECT count(*) FROM automate_run WHERE status = 'succeeded'").fetchone()
        steps = conn.execute("SELECT count(*) FROM automate_step_run WHERE status = 'succeeded'").fetchone()
        jobs = self.config.jobs
        return RunResult(
            mode=mode,
            run=index + 1,
            jobs=jobs,
            completed=int(completed),
            retried=int(retried),
            seconds=round(seconds, 3),
            jobs_per_second=round(jobs / seconds, 1),
            wall_seconds=round(wall, 3),
            latency_p50_ms=round(float(p50) * 1000, 1),
            latency_p99_ms=round(float(p99) * 1000, 1),
            latency_max_ms=round(float(worst) * 1000, 1),
            transactions=commits,
            transactions_per_job=round(commits / jobs, 3),
            runs_recorded=int(runs[0]) if runs else 0,
            steps_recorded=int(steps[0]) if steps else 0,
            series=series,
        )

    # -- checks -------------------------------------------------------------------------------

    def check(self, result: RunResult) -> None:
        problems = []
        if result.completed != result.jobs:
            problems.append(f"{result.completed} of {result.jobs} jobs completed")
        engine = result.mode == "engine"
        if engine and (result.runs_recorded, result.steps_recorded) != (result.jobs,) * 2:
            problems.append(f"{result.runs_recorded} runs and {result.steps_recorded} step runs recorded")
        if problems:
            raise SystemExit(f"{result.mode} run {result.run} is not valid: {'; '.join(problems)}")

    def say(self, message: str) -> None:
        self.err.write(message + "\n")
        self.err.flush()


def main(config: BenchConfig, base_url: str, out: TextIO, err: TextIO = sys.stderr) -> dict[str, Any]:
    """Run every repeat of every contender, interleaved, and write the report.

    The contenders are the modes, each on the empty benchmark database and (``compare_history``)
    on the one holding ``history`` completed jobs (labelled ``<mode>+history``), and the peer
    (``config.peer``, on the first database). Each repeat runs every contender once, in turn,
    and every other repeat runs them in the reverse order (A B, then B A): a ratio between two
    contenders is taken between runs of the same repeat, side by side, so that neither the drift
    of a shared machine over minutes nor the order within a repeat (the first run after a reset,
    the checkpoint, a warm cache) leans on one side.
    """
    from benchmarks.outbox import peer, report

    targets = [("", Harness(replace(config, history=0) if config.compare_history else config, out, err))]
    if config.compare_history:
        url = bench_url(config.database_url, history=True)
        targets.append(("+history", Harness(replace(config, database_url=url), out, err)))
    for _label, harness in targets:
        harness.prepare(base_url)
    contenders = [(mode, label, harness) for mode in config.modes for label, harness in targets]
    if config.peer:
        contenders.append((config.peer, "", targets[0][1]))
    results: list[RunResult] = []
    for index in range(config.repeat):
        for mode, label, harness in contenders if index % 2 == 0 else contenders[::-1]:
            result = peer.run(harness, index) if mode == config.peer else harness.run_once(mode, index)
            harness.check(result)
            result.mode += label
            results.append(result)
            harness.say(
                f"  {result.mode:<6} run {index + 1}: {result.jobs_per_second:>9,.0f} jobs/s  "
                f"p50 {result.latency_p50_ms:,.0f} ms  p99 {result.latency_p99_ms:,.0f} ms  "
                f"{result.transactions_per_job:.3f} transactions/job"
            )
    with targets[0][1].connect() as conn:
        machine = report.machine(conn)
    document = {
        "config": {**asdict(config), "out_dir": str(config.out_dir)},
        "machine": machine,
        "finished_at": datetime.now(UTC).isoformat(),
        "summary": report.summarize(results, peer=config.peer),
        "runs": [asdict(r) for r in results],
    }
    report.save(document, results, config, out, targets[0][1].say)
    return document
