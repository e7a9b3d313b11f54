"""Retention of one day of run records: dropping its partitions against deleting its rows.

    python -m benchmarks.history.retention \
        --database-url postgresql://postgres@127.0.0.1/automate_bench_history --days 30 --per-day 1000000

In one database migrated to the current schema: ``automate_run`` and ``automate_step_run``
(partitioned by day, migration 0016) and ``plain_run`` and ``plain_step`` (copies of today's
unpartitioned tables before 0016, with the same indexes), each holding ``--days`` days of
``--per-day`` runs with one step each. Each round takes the oldest day left from each, alternated
(plain first in odd rounds, partitioned first in even ones):

* **delete**: what retention did before 0016, a keyset walk of ``RETENTION_BATCH_SIZE`` (1000) runs
  per statement, their steps then the runs;
* **drop**: what it does now, ``DETACH PARTITION ... CONCURRENTLY`` and ``DROP TABLE`` of the day's
  step and run partitions.

Measured: wall time, WAL written (``pg_current_wal_lsn``), and a concurrent writer (a run and a step
per transaction into the same tables, as the journal writes) whose commits per second during the
operation are compared with its rate in the same span just before it. Prints a JSON line per
operation and a summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from typing import Any

import psycopg

from automate_core.history import ids, tables

BATCH = 1000

PLAIN = """
DROP TABLE IF EXISTS plain_step, plain_run;
CREATE TABLE plain_run (LIKE automate_run_legacy INCLUDING ALL);
CREATE TABLE plain_step (LIKE automate_step_run_legacy INCLUDING ALL);
ALTER TABLE plain_run DROP CONSTRAINT IF EXISTS automate_run_legacy_range;
ALTER TABLE plain_step DROP CONSTRAINT IF EXISTS automate_step_run_legacy_range;
"""

FILL_RUNS = """
INSERT INTO {table}
    (id, workflow_name, event_id, attempt, status, error, trace_id, mode, started_at, finished_at)
SELECT %(lo)s + g, 'wf', g, 1, 'succeeded', '', md5(g::text), '', %(at)s, %(at)s
FROM generate_series(0, %(n)s - 1) AS g
"""

FILL_STEPS = """
INSERT INTO {table} (id, run_id, position, name, connector, action, status, attempt, input, output, error,
                     started_at, finished_at, duration_ms)
SELECT nextval('automate_step_run_id_seq'), %(lo)s + g, 1, 'notify', 'log', 'log', 'succeeded', 1,
       '{{"message": "order placed"}}', '{{"logged": true}}', '', %(at)s, %(at)s, 1.0
FROM generate_series(0, %(n)s - 1) AS g
"""

DELETE_BATCH = """
WITH doomed AS (
    SELECT id FROM plain_run WHERE id >= %(lo)s AND id < %(hi)s ORDER BY id LIMIT %(batch)s
), steps AS (
    DELETE FROM plain_step WHERE run_id IN (SELECT id FROM doomed)
)
DELETE FROM plain_run WHERE id IN (SELECT id FROM doomed)
"""

WRITE = """
WITH run AS (
    INSERT INTO {runs} (id, workflow_name, event_id, attempt, status, error, trace_id, mode, started_at)
    VALUES (%(id)s, 'writer', 0, 1, 'succeeded', '', 'w', '', now())
    RETURNING id
)
INSERT INTO {steps} (id, run_id, position, name, connector, action, status, attempt, error,
                     started_at, finished_at, duration_ms)
SELECT nextval('automate_step_run_id_seq'), id, 1, 's', 'log', 'log', 'succeeded', 1, '', now(), now(), 1.0
FROM run
"""


def lsn(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


class Writer(threading.Thread):
    """Commits a run and a step per transaction, and timestamps each commit."""

    def __init__(self, url: str, runs: str, steps: str, first_id: int) -> None:
        super().__init__(daemon=True)
        self.url, self.statement = url, WRITE.format(runs=runs, steps=steps)
        self.next_id = first_id
        self.commits: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                conn.execute(self.statement.encode(), {"id": self.next_id})
                self.next_id += 1
                self.commits.append(time.perf_counter())

    def rate(self, start: float, end: float) -> float:
        return sum(1 for t in self.commits if start <= t < end) / max(end - start, 1e-9)

    def longest_stall(self, start: float, end: float) -> float:
        """The longest wait between two commits, over the gaps that overlap [start, end]."""
        pairs = zip(self.commits, self.commits[1:], strict=False)
        gaps = [b - a for a, b in pairs if b >= start and a <= end]
        return max(gaps, default=0.0)


def day_bounds(day: dt.date) -> tuple[int, int]:
    return ids.bound(day), ids.bound(day + dt.timedelta(days=1))


def build(url: str, first: dt.date, days: int, per_day: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PLAIN.encode())
        for table in tables.TABLES:  # the benchmark's days, and nothing else of theirs
            for n in range(days + 1):
                for statement in tables.create_partition(table, first + dt.timedelta(days=n)):
                    conn.execute(statement.encode())
        for n in range(days):
            day = first + dt.timedelta(days=n)
            lo, _hi = day_bounds(day)
            at = dt.datetime.combine(day, dt.time(12), dt.UTC)
            for runs, steps in (("automate_run", "automate_step_run"), ("plain_run", "plain_step")):
                conn.execute(FILL_RUNS.format(table=runs).encode(), {"lo": lo, "n": per_day, "at": at})
                conn.execute(FILL_STEPS.format(table=steps).encode(), {"lo": lo, "n": per_day, "at": at})
            print(f"filled day {n + 1} of {days}", file=sys.stderr, flush=True)
        conn.execute("VACUUM ANALYZE plain_run, plain_step, automate_run, automate_step_run")
        conn.execute("CHECKPOINT")


def delete_day(conn: psycopg.Connection[Any], day: dt.date) -> None:
    lo, hi = day_bounds(day)
    while conn.execute(DELETE_BATCH.encode(), {"lo": lo, "hi": hi, "batch": BATCH}).rowcount:
        pass


def drop_day(conn: psycopg.Connection[Any], day: dt.date) -> None:
    for table in tables.TABLES:
        name = table.partition(day)
        conn.execute(f"ALTER TABLE {table.name} DETACH PARTITION {name} CONCURRENTLY".encode())
        conn.execute(f"DROP TABLE {name}".encode())


def measure(url: str, kind: str, day: dt.date, first_id: int) -> dict[str, Any]:
    runs, steps = ("plain_run", "plain_step") if kind == "delete" else ("automate_run", "automate_step_run")
    writer = Writer(url, runs, steps, first_id)
    writer.start()
    while len(writer.commits) < 50:  # warmed up
        if not writer.is_alive():
            raise SystemExit("the concurrent writer stopped (its error is above)")
        time.sleep(0.01)
    with psycopg.connect(url, autocommit=True) as conn:
        before_start = time.perf_counter()
        time.sleep(2.0)  # the writer's rate before the operation, over a fixed span
        wal0, t0 = lsn(conn), time.perf_counter()
        (delete_day if kind == "delete" else drop_day)(conn, day)
        t1 = time.perf_counter()
        wal1 = lsn(conn)
        time.sleep(0.5)  # the writer's commits just after it
    writer.stop.set()
    writer.join()
    global next_writer_id
    next_writer_id = writer.next_id
    return {
        "kind": kind,
        "day": day.isoformat(),
        "seconds": round(t1 - t0, 3),
        "wal_bytes": wal1 - wal0,
        "writer_before_per_s": round(writer.rate(before_start, t0), 1),
        "writer_during_per_s": round(writer.rate(t0, t1), 1) if t1 - t0 >= 0.2 else None,
        "writer_longest_stall_ms": round(writer.longest_stall(t0, t1) * 1000, 1),
        "writer_longest_stall_before_ms": round(writer.longest_stall(before_start, t0) * 1000, 1),
    }


next_writer_id = 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a database migrated to the current schema")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-build", action="store_true", help="reuse the tables of an earlier run")
    args = parser.parse_args(argv)
    first = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=400)  # days of the benchmark's own
    if not args.no_build:
        build(args.database_url, first, args.days, args.per_day)
    results = []
    for r in range(args.rounds):
        day = first + dt.timedelta(days=r)
        order = ["delete", "drop"] if r % 2 == 0 else ["drop", "delete"]
        for kind in order:
            writer_from = max(next_writer_id, ids.bound(first + dt.timedelta(days=args.days)))
            result = measure(args.database_url, kind, day, writer_from)
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {}
    for key in ("seconds", "wal_bytes"):
        d = [x[key] for x in results if x["kind"] == "delete"]
        p = [x[key] for x in results if x["kind"] == "drop"]
        summary[key] = {"delete_median": statistics.median(d), "drop_median": statistics.median(p)}
    for kind in ("delete", "drop"):
        mine = [x for x in results if x["kind"] == kind]
        rates = [
            x["writer_during_per_s"] / x["writer_before_per_s"] for x in mine if x["writer_during_per_s"]
        ]
        summary[f"writer_during_over_before_{kind}"] = round(statistics.median(rates), 3) if rates else None
        stalls = [x["writer_longest_stall_ms"] for x in mine]
        summary[f"writer_longest_stall_ms_{kind}"] = statistics.median(stalls)
        summary[f"writer_longest_stall_before_ms_{kind}"] = statistics.median(
            x["writer_longest_stall_before_ms"] for x in mine
        )
    print(json.dumps({"summary": summary, "days": args.days, "per_day": args.per_day}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
