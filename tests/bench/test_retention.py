"""``benchmarks.history.retention`` at a tiny size, for both kinds of records: each round removes
the oldest day left from both schemas (deleted row by row from the plain copy, dropped whole from
the partitioned table), in alternating order, and leaves every other day as it was."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import psycopg
import pytest

from automate_core.history import ids, tables
from benchmarks.history import retention

DAYS, PER_DAY = 3, 400
IN_QUEUE = "SELECT count(*) FROM automate_outbox_job WHERE queue = %s"
DRAIN = retention.DRAIN_QUEUE


def one(url: str, query: str, params: tuple[object, ...]) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


def counts(url: str, table: str, first: dt.date) -> list[object]:
    """Rows per benchmark day in ``table`` (the writer's rows, on the day after the last, aside)."""
    bounds = [ids.bound(first + dt.timedelta(days=n)) for n in range(DAYS + 1)]
    column = "run_id" if "step" in table else "id"
    query = f"SELECT count(*) FROM {table} WHERE {column} >= %s AND {column} < %s"
    return [one(url, query, (lo, hi)) for lo, hi in itertools.pairwise(bounds)]


def partitions(url: str, table: tables.HistoryTable, first: dt.date) -> list[object]:
    """Whether each benchmark day's partition of ``table`` exists (the writer's day last)."""
    days = [first + dt.timedelta(days=n) for n in range(DAYS + 1)]
    return [one(url, "SELECT to_regclass(%s) IS NOT NULL", (table.partition(d),)) for d in days]


@pytest.mark.parametrize("records", ["events", "runs"])
def test_each_round_deletes_and_drops_the_oldest_day_and_nothing_else(
    bench_url: str, records: str, capsys: pytest.CaptureFixture[str]
) -> None:
    subject, first = retention.RECORDS[records], retention.first_day()
    try:
        assert retention.main(["--database-url", bench_url, "--records", records, "--days", str(DAYS),
                               "--per-day", str(PER_DAY), "--rounds", "2"]) == 0  # fmt: skip
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        *operations, summary = lines
        assert [(o["kind"], o["day"]) for o in operations] == [
            ("delete", first.isoformat()), ("drop", first.isoformat()),
            ("drop", (first + dt.timedelta(days=1)).isoformat()),
            ("delete", (first + dt.timedelta(days=1)).isoformat()),
        ]  # fmt: skip
        assert all(o["records"] == records and o["wal_bytes"] > 0 for o in operations)
        assert summary["records"] == records and set(summary["summary"]["seconds"]) == {
            "delete_median", "drop_median"
        }  # fmt: skip
        # two days gone from both, the third untouched, the writers' day beyond them still there
        for plain in subject.plain:
            assert counts(bench_url, plain, first) == [0, 0, PER_DAY]
        for table in subject.partitioned:
            assert partitions(bench_url, table, first) == [False, False, True, True]
            assert counts(bench_url, table.name, first) == [0, 0, PER_DAY]
    finally:
        retention.cleanup(bench_url, subject, first, DAYS)
    for table in subject.partitioned:
        assert partitions(bench_url, table, first) == [False] * (DAYS + 1)
    assert [one(bench_url, "SELECT to_regclass(%s) IS NOT NULL", (p,)) for p in subject.plain] == [
        False
    ] * len(subject.plain)


def test_the_drain_contender_claims_and_completes_its_own_jobs_beside_each_operation(
    bench_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    subject, first = retention.RECORDS["events"], retention.first_day()
    with psycopg.connect(bench_url, autocommit=True) as conn:  # another queue's job, not the drain's
        conn.execute(retention.DRAIN_BACKLOG.encode(), {"queue": "someone-else", "n": 1})
    try:
        assert retention.main(["--database-url", bench_url, "--records", "events", "--days", str(DAYS),
                               "--per-day", str(PER_DAY), "--rounds", "1", "--contender", "drain",
                               "--drain-backlog", "100000", "--drain-batch", "10"]) == 0  # fmt: skip
        *operations, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [o["contender"] for o in operations] == ["drain", "drain"] and summary["contender"] == "drain"
        # the drain ran before each operation: jobs per second, and the gaps between completions
        assert all(o["writer_before_per_s"] > 0 for o in operations), operations
        assert all(o["writer_longest_stall_before_ms"] > 0 for o in operations), operations
        for plain in subject.plain:
            assert counts(bench_url, plain, first) == [0, PER_DAY, PER_DAY]
        for table in subject.partitioned:
            assert counts(bench_url, table.name, first) == [0, PER_DAY, PER_DAY]
        # each operation's backlog is gone afterwards, completed or not; the other queue's job stays
        assert one(bench_url, IN_QUEUE, (DRAIN,)) == 0
        assert one(bench_url, IN_QUEUE, ("someone-else",)) == 1
    finally:
        retention.cleanup(bench_url, subject, first, DAYS)
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("DELETE FROM automate_outbox_job WHERE queue IN (%s, 'someone-else')", (DRAIN,))


def test_a_drain_backlog_that_runs_out_stops_the_benchmark_with_the_flag_to_raise(bench_url: str) -> None:
    subject, first = retention.RECORDS["events"], retention.first_day()
    try:
        with pytest.raises(SystemExit, match="backlog of 60 jobs ran out: raise --drain-backlog"):
            retention.main(["--database-url", bench_url, "--records", "events", "--days", "1",
                            "--per-day", "10", "--rounds", "1", "--contender", "drain",
                            "--drain-backlog", "60"])  # fmt: skip
        assert one(bench_url, IN_QUEUE, (DRAIN,)) == 0
    finally:
        retention.cleanup(bench_url, subject, first, 1)
