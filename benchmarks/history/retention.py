"""Retention of one day of history: dropping its partitions against deleting its rows.

    python -m benchmarks.history.retention --records runs \
        --database-url postgresql://postgres@127.0.0.1/automate_bench_history --days 30 --per-day 1000000
    python -m benchmarks.history.retention --records events \
        --database-url postgresql://postgres@127.0.0.1/automate_bench_events --days 30 --per-day 1000000

In one database migrated to the current schema, ``--days`` days of ``--per-day`` records each, in
the partitioned tables and in plain copies of the tables as they were before they were partitioned
(same indexes, from the legacy partition):

* ``--records runs``: ``automate_run`` and ``automate_step_run`` (migration 0016) against
  ``plain_run`` and ``plain_step``, a run with one step each;
* ``--records events``: ``automate_event`` (migration 0017) against ``plain_event``. Their jobs are
  gone already, as in a deployment (completed jobs go after ``RETENTION_COMPLETED_JOBS``, a day).

Each round takes the oldest day left from each, alternated (plain first in odd rounds,
partitioned first in even ones):

* **delete**: what retention did before, a keyset walk of ``RETENTION_BATCH_SIZE`` (1000) records
  per statement (runs: their steps, then the runs; events: the pre-0017 ``PRUNE_EVENTS``, with the
  day's end as its cutoff);
* **drop**: what it does now, with the platform's own statements: for events, the day's settled
  jobs (``PRUNE_EVENT_DAY_JOBS``, none left) and ``EVENT_PARTITION_IN_USE`` first, then for each
  table ``DETACH PARTITION ... CONCURRENTLY`` and ``DROP TABLE``.

Measured: wall time, WAL written (``pg_current_wal_lsn``), and a concurrent contender whose rate
during the operation is compared with its rate in the same span just before it, and whose longest
wait between two of its commits is recorded:

* ``--contender writer`` (the default): commits one record per transaction (runs: a run and a step,
  as the journal writes; events: one event, as ingest writes) into the tables retention works on;
* ``--contender drain``: drains a backlog of outbox jobs with the worker's own statements
  (``CLAIM_BATCH_QUEUE``, ``CLAIMED_EVENTS``, ``COMPLETE``; ``--drain-batch`` jobs a claim, 50 as
  the worker's default) on its own queue, each completion moving its jobs into today's partition
  of completed jobs: the outbox's side of a drain, without the engine's Python around it. Its rate
  is in jobs per second. Its backlog is deleted and the job table vacuumed after each operation.

``--no-build --skip-days N`` measures more rounds on the tables of an earlier run that removed N
days already.

Prints a JSON line per operation and a summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from automate_core.history import ids, tables
from automate_core.outbox import queries

BATCH = 1000

PLAIN_RUNS = """
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

DELETE_RUNS = """
WITH doomed AS (
    SELECT id FROM plain_run WHERE id >= %(lo)s AND id < %(hi)s ORDER BY id LIMIT %(batch)s
), steps AS (
    DELETE FROM plain_step WHERE run_id IN (SELECT id FROM doomed)
)
DELETE FROM plain_run WHERE id IN (SELECT id FROM doomed)
"""

WRITE_RUN = """
WITH run AS (
    INSERT INTO {1} (id, workflow_name, event_id, attempt, status, error, trace_id, mode, started_at)
    VALUES (%(id)s, 'writer', 0, 1, 'succeeded', '', 'w', '', now())
    RETURNING id
)
INSERT INTO {0} (id, run_id, position, name, connector, action, status, attempt, error,
                 started_at, finished_at, duration_ms)
SELECT nextval('automate_step_run_id_seq'), id, 1, 's', 'log', 'log', 'succeeded', 1, '', now(), now(), 1.0
FROM run
"""

PLAIN_EVENTS = """
DROP TABLE IF EXISTS plain_event;
CREATE TABLE plain_event (LIKE automate_event_legacy INCLUDING ALL);
ALTER TABLE plain_event DROP CONSTRAINT IF EXISTS automate_event_legacy_range;
"""

#: a webhook's event as ingest stores it: a small order document, its headers, a key
FILL_EVENTS = """
INSERT INTO {table} (id, source, event_type, payload, headers, idempotency_key, trace_id, received_at)
SELECT %(lo)s + g, 'shop', 'order.created',
       jsonb_build_object('id', %(lo)s + g, 'total', 4200 + g %% 100, 'currency', 'EUR',
                          'customer', jsonb_build_object('email', 'c' || g || '@example.com'),
                          'items', '[{{"sku": "A-1", "qty": 2}}, {{"sku": "B-7", "qty": 1}}]'::jsonb),
       '{{"content-type": "application/json", "user-agent": "shop/1.0"}}',
       'msg_' || (%(lo)s + g), md5(g::text), %(at)s
FROM generate_series(0, %(n)s - 1) AS g
"""

#: Retention of events before 0017 (``PRUNE_EVENTS`` of outbox.queries at a48aa7e), on the plain
#: copy, with the day's end as the cutoff instead of ``now() - age``.
DELETE_EVENTS = """
WITH scanned AS (
    SELECT id, received_at FROM plain_event
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(scan)s
), doomed AS (
    SELECT e.id FROM plain_event AS e JOIN scanned USING (id)
    WHERE e.received_at < %(cutoff)s
      AND NOT EXISTS (
          SELECT 1 FROM automate_outbox_job AS j
          WHERE j.event_id = e.id AND j.status <> 'completed'
            AND NOT coalesce(j.status = 'dead'
                             AND j.updated_at < now() - make_interval(secs => %(dead_age)s), false))
      AND NOT EXISTS (SELECT 1 FROM automate_run AS r WHERE r.event_id = e.id)
    FOR UPDATE OF e SKIP LOCKED
), doomed_jobs AS (
    SELECT j.id FROM automate_outbox_job AS j JOIN doomed ON j.event_id = doomed.id
), unlinked_replays AS (
    UPDATE automate_outbox_job SET replay_of_id = NULL
    WHERE replay_of_id IN (SELECT id FROM doomed_jobs) AND id NOT IN (SELECT id FROM doomed_jobs)
), jobs AS (
    DELETE FROM automate_outbox_job WHERE id IN (SELECT id FROM doomed_jobs)
), pruned AS (
    DELETE FROM plain_event WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT (SELECT count(*) FROM pruned), (SELECT max(id) FROM scanned),
       coalesce((SELECT bool_or(received_at >= %(cutoff)s) FROM scanned), true)
"""

WRITE_EVENT = """
INSERT INTO {0} (id, source, event_type, payload, headers, idempotency_key, trace_id, received_at)
VALUES (%(id)s, 'shop', 'order.created', '{{"id": 1, "total": 4200}}', '{{}}', 'w_' || %(id)s, 'w', now())
"""


def day_bounds(day: dt.date) -> tuple[int, int]:
    return ids.bound(day), ids.bound(day + dt.timedelta(days=1))


@dataclass(frozen=True)
class Records:
    """What one ``--records`` compares: its tables both ways, how a day is filled and deleted."""

    name: str
    partitioned: tuple[tables.HistoryTable, ...]  # in the order their partitions are dropped
    plain: tuple[str, ...]  # the same tables, unpartitioned
    create_plain: str
    fills: tuple[str, ...]  # a day's rows, for each table in turn ({table} the one it fills)
    write: str  # one commit of the concurrent writer, {0}, {1}... the tables, in the same order

    def fill(self, conn: psycopg.Connection[Any], day: dt.date, per_day: int) -> None:
        lo, _hi = day_bounds(day)
        at = dt.datetime.combine(day, dt.time(12), dt.UTC)
        for names in ([t.name for t in self.partitioned], self.plain):
            for fill, table in zip(self.fills, names, strict=True):
                conn.execute(fill.format(table=table).encode(), {"lo": lo, "n": per_day, "at": at})

    def delete_day(self, conn: psycopg.Connection[Any], day: dt.date) -> None:
        lo, hi = day_bounds(day)
        if self.name == "runs":
            while conn.execute(DELETE_RUNS.encode(), {"lo": lo, "hi": hi, "batch": BATCH}).rowcount:
                pass
            return
        cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        params: dict[str, Any] = {"after": lo - 1, "scan": BATCH, "cutoff": cutoff, "dead_age": None}
        while True:
            row = conn.execute(DELETE_EVENTS.encode(), params).fetchone()
            assert row is not None
            _pruned, last, reached_young = row
            if last is None or reached_young:
                return
            params["after"] = last

    def drop_day(self, conn: psycopg.Connection[Any], day: dt.date) -> None:
        if self.name == "events":  # history.partitions.drop_expired, for this one day
            lo, hi = day_bounds(day)
            release = {"lower": lo, "upper": hi, "dead_age": None, "scan": BATCH}
            while (row := conn.execute(queries.PRUNE_EVENT_DAY_JOBS, release).fetchone()) and row[0] >= BATCH:
                pass
            in_use = conn.execute(
                tables.EVENT_PARTITION_IN_USE.encode(), {"lower": lo, "upper": hi}
            ).fetchone()
            assert in_use is not None and not in_use[0], "the day's events are still named by something"
        for table in self.partitioned:
            name = table.partition(day)
            conn.execute(f"ALTER TABLE {table.name} DETACH PARTITION {name} CONCURRENTLY".encode())
            conn.execute(f"DROP TABLE {name}".encode())

    def writer_statement(self, kind: str) -> str:
        names = self.plain if kind == "delete" else tuple(t.name for t in self.partitioned)
        return self.write.format(*names)


RECORDS = {
    "runs": Records(
        "runs",
        (tables.STEPS, tables.RUNS),
        ("plain_step", "plain_run"),
        PLAIN_RUNS,
        (FILL_STEPS, FILL_RUNS),
        WRITE_RUN,
    ),
    "events": Records(
        "events", (tables.EVENTS,), ("plain_event",), PLAIN_EVENTS, (FILL_EVENTS,), WRITE_EVENT
    ),
}


def lsn(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


class Writer(threading.Thread):
    """Commits one writer statement per transaction, and timestamps each commit."""

    def __init__(self, url: str, statement: str, first_id: int) -> None:
        super().__init__(daemon=True)
        self.url, self.statement = url, statement
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


#: The drain contender's jobs: a queue of their own, so that it claims nothing else; no event (the
#: claim's read of events finds none for them, as for a task job).
DRAIN_QUEUE = "bench-retention"

DRAIN_BACKLOG = """
INSERT INTO automate_outbox_job_live
    (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error, queue,
     created_at, updated_at)
SELECT NULL, 'event', 'ready', 0, 5, now(), '', '', %(queue)s, now(), now()
FROM generate_series(1, %(n)s)
"""

DRAIN_LEFT = "SELECT count(*) FROM automate_outbox_job_live WHERE queue = %(queue)s AND status = 'ready'"

DRAIN_CLEANUP = "DELETE FROM automate_outbox_job WHERE queue = %(queue)s"


class Drainer(Writer):
    """Claims and completes outbox jobs of ``DRAIN_QUEUE`` as a worker does, one statement per
    commit, and timestamps each completed job (``commits`` holds one time per job)."""

    def __init__(self, url: str, batch: int) -> None:
        super().__init__(url, "", 0)
        self.batch = batch

    def run(self) -> None:
        claim = {"queue": DRAIN_QUEUE, "limit": self.batch, "owner": "retention-bench", "lease": 60.0}
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(queries.CLAIM_BATCH_QUEUE, claim).fetchall()
                if not rows:  # the backlog ran out: measure() says so (none left ready)
                    return
                events = [row[7] for row in rows if row[7] is not None]
                conn.execute(queries.CLAIMED_EVENTS, {"ids": events}).fetchall()
                done = conn.execute(
                    queries.COMPLETE,
                    {"ids": [row[0] for row in rows], "attempts": [row[2] for row in rows],
                     "results": [None] * len(rows), "owner": "retention-bench"},
                ).rowcount  # fmt: skip
                now = time.perf_counter()
                self.commits.extend([now] * done)


def build(url: str, records: Records, first: dt.date, days: int, per_day: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(records.create_plain.encode())
        for table in records.partitioned:  # the benchmark's days, and nothing else of theirs
            for n in range(days + 1):
                for statement in tables.create_partition(table, first + dt.timedelta(days=n)):
                    conn.execute(statement.encode())
        for n in range(days):
            records.fill(conn, first + dt.timedelta(days=n), per_day)
            print(f"filled day {n + 1} of {days}", file=sys.stderr, flush=True)
        names = ", ".join([*records.plain, *(t.name for t in records.partitioned)])
        conn.execute(f"VACUUM ANALYZE {names}".encode())
        conn.execute("CHECKPOINT")


def measure(
    url: str, records: Records, kind: str, day: dt.date, first_id: int, drain: tuple[int, int] | None = None
) -> dict[str, Any]:
    """One operation on ``day`` beside the contender: the writer, or with ``drain`` (backlog,
    batch) the drainer over a fresh backlog of that many jobs."""
    writer: Writer
    if drain is None:
        writer = Writer(url, records.writer_statement(kind), first_id)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DRAIN_BACKLOG, {"queue": DRAIN_QUEUE, "n": drain[0]})
            conn.execute("ANALYZE automate_outbox_job_live")
        writer = Drainer(url, drain[1])
    writer.start()
    while len(writer.commits) < 50:  # warmed up
        if not writer.is_alive():
            raise SystemExit("the concurrent contender stopped (its error is above)")
        time.sleep(0.01)
    with psycopg.connect(url, autocommit=True) as conn:
        before_start = time.perf_counter()
        time.sleep(2.0)  # the writer's rate before the operation, over a fixed span
        wal0, t0 = lsn(conn), time.perf_counter()
        (records.delete_day if kind == "delete" else records.drop_day)(conn, day)
        t1 = time.perf_counter()
        wal1 = lsn(conn)
        time.sleep(0.5)  # the writer's commits just after it
    writer.stop.set()
    writer.join()
    if isinstance(writer, Drainer):
        with psycopg.connect(url, autocommit=True) as conn:
            left = conn.execute(DRAIN_LEFT, {"queue": DRAIN_QUEUE}).fetchone()
            conn.execute(DRAIN_CLEANUP, {"queue": DRAIN_QUEUE})
            # the backlog's dead rows, or the next operation's drain starts slower behind them
            conn.execute("VACUUM (ANALYZE) automate_outbox_job")
        if not left or not left[0]:
            backlog = drain[0] if drain else 0
            raise SystemExit(f"the drain's backlog of {backlog} jobs ran out: raise --drain-backlog")
    global next_writer_id
    next_writer_id = writer.next_id
    return {
        "records": records.name,
        "kind": kind,
        "contender": "drain" if drain else "writer",
        "day": day.isoformat(),
        "seconds": round(t1 - t0, 3),
        "wal_bytes": wal1 - wal0,
        "writer_before_per_s": round(writer.rate(before_start, t0), 1),
        "writer_during_per_s": round(writer.rate(t0, t1), 1) if t1 - t0 >= 0.2 else None,
        "writer_longest_stall_ms": round(writer.longest_stall(t0, t1) * 1000, 1),
        "writer_longest_stall_before_ms": round(writer.longest_stall(before_start, t0) * 1000, 1),
    }


next_writer_id = 0


def first_day() -> dt.date:
    """The benchmark's first day: far enough ahead that no partition of the platform's is on it."""
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=400)


def cleanup(url: str, records: Records, first: dt.date, days: int) -> None:
    """Drop what ``build`` made: the plain tables and the benchmark's partitions still there."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in records.partitioned:
            for n in range(days + 1):
                name = table.partition(first + dt.timedelta(days=n))
                conn.execute(f"DROP TABLE IF EXISTS {name}".encode())
        conn.execute(f"DROP TABLE IF EXISTS {', '.join(records.plain)}".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a database migrated to the current schema")
    parser.add_argument("--records", choices=sorted(RECORDS), default="runs")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-build", action="store_true", help="reuse the tables of an earlier run")
    parser.add_argument(
        "--skip-days", type=int, default=0, help="with --no-build: the days an earlier run removed already"
    )
    parser.add_argument(
        "--contender", choices=["writer", "drain"], default="writer", help="what runs beside each operation"
    )
    parser.add_argument(
        "--drain-backlog", type=int, default=500_000, help="jobs queued for each operation (to last it)"
    )
    parser.add_argument("--drain-batch", type=int, default=50, help="jobs the drain claims at once")
    args = parser.parse_args(argv)
    drain = (args.drain_backlog, args.drain_batch) if args.contender == "drain" else None
    records = RECORDS[args.records]
    first = first_day()
    if not args.no_build:
        build(args.database_url, records, first, args.days, args.per_day)
    results = []
    for r in range(args.rounds):
        day = first + dt.timedelta(days=args.skip_days + r)
        order = ["delete", "drop"] if r % 2 == 0 else ["drop", "delete"]
        for kind in order:
            writer_from = max(next_writer_id, ids.bound(first + dt.timedelta(days=args.days)))
            result = measure(args.database_url, records, kind, day, writer_from, drain)
            print(json.dumps(result), flush=True)
            results.append(result)
    summary: dict[str, Any] = {}
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
    line = {"summary": summary, "records": records.name, "days": args.days, "per_day": args.per_day,
            "contender": args.contender}  # fmt: skip
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
