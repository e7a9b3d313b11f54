"""Partitioned run records: ids that say when, partitions made ahead, old days dropped whole."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async

from automate_core import db
from automate_core.conf import settings as automate_settings
from automate_core.history import ids, partitions, settled, tables
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, StepRun
from automate_core.outbox.retention import Pruner, RetentionPolicy

pytestmark = pytest.mark.usefixtures("live_db")

DAY = 86400.0
TODAY = dt.datetime.now(dt.UTC).date()


async def partition_names() -> dict[str, set[str]]:
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(tables.LIST_PARTITIONS, {"tables": [t.name for t in tables.TABLES]})
        found: dict[str, set[str]] = {}
        for parent, child in await cur.fetchall():
            found.setdefault(parent, set()).add(child)
        return found


#: The tests' clock for retention: far enough ahead that days after today are old by then (a day
#: before today cannot have a partition: the legacy partition holds everything below today).
LATER = dt.datetime.combine(TODAY + dt.timedelta(days=50), dt.time(12), dt.UTC)


@pytest.fixture
async def made_days() -> AsyncIterator[list[dt.date]]:
    """Days after today whose partitions a test makes; dropped again afterwards."""
    days: list[dt.date] = []
    yield days
    pool = await db.get_pool()
    async with pool.connection() as conn:
        for day in days:
            for table in tables.TABLES:
                await conn.execute(f"DROP TABLE IF EXISTS {table.partition(day)}".encode())
            await conn.execute(f"DROP TABLE IF EXISTS {settled.partition(day)}".encode())
        # a test whose clock ran ahead has dropped today's partitions (empty, and old by its clock)
        today = dt.datetime.now(dt.UTC).date()
        await partitions.ensure_ahead(conn, int(automate_settings.HISTORY_PARTITIONS_AHEAD), today=today)


async def make_day(day: dt.date, days: list[dt.date]) -> None:
    days.append(day)
    pool = await db.get_pool()
    async with pool.connection() as conn:
        await partitions.ensure_ahead(conn, 0, today=day)


async def add_run(day: dt.date, n: int, status: str, **times: dt.datetime) -> int:
    """A run (with one step) written on ``day``: its id is one of that day's history ids."""
    run_id = ids.bound(day) + n
    event_id = (await sync_to_async(emit)("shop", "order.created", {})).event_id
    written = dt.datetime.combine(day, dt.time(12), dt.UTC)
    pool = await db.get_pool()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO automate_run (id, workflow_name, event_id, attempt, status, error, trace_id, mode,"
            " started_at, finished_at) VALUES (%s, 'wf', %s, 1, %s, '', 't', '', %s, %s)",
            [run_id, event_id, status, times.get("started_at", written), times.get("finished_at", written)],
        )
        await conn.execute(
            "INSERT INTO automate_step_run (run_id, position, name, connector, action, status, attempt,"
            " error, started_at, finished_at, duration_ms) VALUES (%s, 1, 's', 'log', 'log', 'succeeded',"
            " 1, '', %s, %s, 1.0)",
            [run_id, written, written],
        )
    return run_id


def test_an_id_says_the_hour_it_was_written_and_bounds_are_days() -> None:
    day = dt.date(2026, 12, 7)
    assert ids.day_of(ids.bound(day)) == day
    assert ids.day_of(ids.bound(day + dt.timedelta(days=1)) - 1) == day
    assert ids.written_at(ids.bound(day) + (5 << ids.SHIFT) + 123) == dt.datetime(
        2026, 12, 7, 5, tzinfo=dt.UTC
    )
    assert ids.bound(dt.date(2259, 1, 1)) < 2**53  # JavaScript reads them exactly until then


async def test_runs_and_their_steps_are_written_to_todays_partitions() -> None:
    event_id = (await sync_to_async(emit)("shop", "order.created", {})).event_id
    run = await ExecutionRun.objects.acreate(workflow_name="wf", event_id=event_id, trace_id="t")
    await StepRun.objects.acreate(
        run=run, position=1, name="s", connector="log", action="log", status="succeeded",
        started_at=run.started_at, finished_at=run.started_at, duration_ms=1.0,
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    assert abs(ids.written_at(run.pk) - now.replace(minute=0, second=0, microsecond=0)) <= dt.timedelta(
        hours=1
    )
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT tableoid::regclass::text FROM automate_run WHERE id = %(id)s),"
            " (SELECT tableoid::regclass::text FROM automate_step_run WHERE run_id = %(id)s)",
            {"id": run.pk},
        )
        row = await cur.fetchone()
    day = ids.day_of(run.pk)
    assert row == (tables.RUNS.partition(day), tables.STEPS.partition(day))
    # and a lookup by id reads that one partition, not every day's (partition pruning)
    async with pool.connection() as conn:
        cur = await conn.execute(f"EXPLAIN SELECT status FROM automate_run WHERE id = {run.pk}".encode())
        plan = "\n".join(r[0] for r in await cur.fetchall())
    assert set(re.findall(r" on (automate_run_\w+)", plan)) == {tables.RUNS.partition(day)}


async def test_partitions_are_made_ahead_once_whoever_makes_them(made_days: list[dt.date]) -> None:
    later = TODAY + dt.timedelta(days=60)  # as if the workers ran on that day
    made_days.extend(later + dt.timedelta(days=n) for n in range(3))
    pool = await db.get_pool()

    async def ensure() -> int:
        async with pool.connection() as conn:
            return await partitions.ensure_ahead(conn, 2, today=later)

    made = await asyncio.gather(ensure(), ensure(), ensure())  # three workers at once
    assert sorted(made) == [0, 0, 3 * (len(tables.TABLES) + 1)]  # and the completed jobs' days
    found = await partition_names()
    for table in tables.TABLES:
        assert {table.partition(later + dt.timedelta(days=n)) for n in range(3)} <= found[table.name]
    async with pool.connection() as conn:
        cur = await conn.execute(tables.LIST_PARTITIONS, {"tables": [settled.DONE]})
        done = {r[1] for r in await cur.fetchall()}
    assert {settled.partition(later + dt.timedelta(days=n)) for n in range(3)} <= done
    assert await ensure() == 0


async def test_a_row_for_a_day_without_a_partition_is_refused_with_postgresqls_message() -> None:
    pool = await db.get_pool()
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.CheckViolation, match="no partition of relation"):
            await conn.execute(
                "INSERT INTO automate_run (id, workflow_name, event_id, attempt, status, error, trace_id,"
                " mode) VALUES (%s, 'wf', 1, 1, 'running', '', 't', '')",
                [ids.bound(TODAY + dt.timedelta(days=400))],
            )


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    monkeypatch.setattr(partitions, "_now", lambda: LATER)
    return LATER


async def keep_legacy() -> None:
    """An event and a run from before the partitioning, still waiting: the legacy partitions
    must stay."""
    pool = await db.get_pool()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO automate_event (id, source, event_type, payload, headers, trace_id, received_at)"
            " VALUES (1, 'shop', 'order.created', '{}', '{}', 't', now() - interval '90 days')"
        )
        await conn.execute(
            "INSERT INTO automate_run (id, workflow_name, event_id, attempt, status, error, trace_id, mode,"
            " started_at) VALUES (1, 'wf', 1, 1, 'waiting', '', 't', '', now() - interval '90 days')"
        )


async def add_event(day: dt.date, n: int, job_status: str | None = None, **job: Any) -> int:
    """An event written on ``day`` (one of that day's history ids), with a job in ``job_status``."""
    event_id = ids.bound(day) + n
    written = dt.datetime.combine(day, dt.time(12), dt.UTC)
    pool = await db.get_pool()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO automate_event (id, source, event_type, payload, headers, trace_id, received_at)"
            " VALUES (%s, 'shop', 'order.created', '{}', '{}', 't', %s)",
            [event_id, written],
        )
        if job_status is not None:
            settled = job.get("settled_at", written)
            await conn.execute(
                "INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts,"
                " lease_owner, last_error, created_at, updated_at, completed_at)"
                " VALUES (%s, 'event', %s, 1, 5, '', '', %s, %s, %s)",
                [event_id, job_status, written, settled, settled if job_status == "completed" else None],
            )
    return event_id


async def test_old_days_are_dropped_whole_and_days_with_pending_runs_kept(
    made_days: list[dt.date], later: dt.datetime
) -> None:
    old, pending, waking, young = (TODAY + dt.timedelta(days=n) for n in (10, 11, 12, 45))
    for day in (old, pending, waking, young):
        await make_day(day, made_days)
    for n in range(3):
        await add_run(old, n, "succeeded")
    await add_run(pending, 0, "succeeded")
    await add_run(pending, 1, "waiting")  # a run asleep for weeks keeps its day
    await add_run(waking, 0, "succeeded", finished_at=later - dt.timedelta(days=1))  # yesterday's history
    await add_run(young, 0, "succeeded")
    await keep_legacy()

    pool = await db.get_pool()
    async with pool.connection() as conn:
        report = await partitions.drop_expired(conn, 30 * DAY)
    # the old day went, and so did the empty days before it (today's, by this clock 50 days ago)
    assert {tables.STEPS.partition(old), tables.RUNS.partition(old)} <= set(report.dropped)
    ahead = [TODAY + dt.timedelta(days=n) for n in range(int(automate_settings.HISTORY_PARTITIONS_AHEAD) + 1)]
    # days of events go too, once nothing names their events: all of them but today's (the runs'
    # events were received today, and their jobs are still queued) and the legacy one (its event
    # has a waiting run)
    assert set(report.dropped) == {t.partition(day) for t in tables.RUN_RECORDS for day in [*ahead, old]} | {
        tables.EVENTS.partition(day) for day in [*ahead[1:], old, pending, waking]
    }
    assert report.dropped.index(tables.STEPS.partition(old)) < report.dropped.index(
        tables.RUNS.partition(old)
    )
    assert set(report.kept) == {
        tables.RUNS.partition(pending),
        tables.RUNS.partition(waking),
        tables.RUNS.legacy,
        tables.EVENTS.partition(TODAY),
        tables.EVENTS.legacy,
    }
    found = await partition_names()
    for table in tables.RUN_RECORDS:
        assert table.partition(old) not in found[table.name]
        assert {table.partition(d) for d in (pending, waking, young)} | {table.legacy} <= found[table.name]
    kept_events = {tables.EVENTS.partition(d) for d in (TODAY, young)} | {tables.EVENTS.legacy}
    assert kept_events <= found["automate_event"]
    left = {r.pk async for r in ExecutionRun.objects.all()}
    assert len(left) == 5 and all(ids.day_of(pk) != old for pk in left)
    assert await StepRun.objects.acount() == 4  # the old day's steps went with its runs


async def test_the_retention_pass_drops_old_days_inside_a_transaction_too(
    made_days: list[dt.date], later: dt.datetime, settings: Any
) -> None:
    old = TODAY + dt.timedelta(days=5)
    await make_day(old, made_days)
    await add_run(old, 0, "succeeded")
    await keep_legacy()
    policy = RetentionPolicy(completed_jobs=None, dead_jobs=None, events=30 * DAY)
    # behind a transaction pooler, without a direct connection: the pass is one transaction, and
    # the detach is the plain one (CONCURRENTLY cannot run in a transaction)
    settings.AUTOMATE_DB_TRANSACTION_POOLING = True
    settings.AUTOMATE_LISTEN_DATABASE_URL = ""
    await Pruner(policy).run_pass()
    found = await partition_names()
    assert tables.RUNS.partition(old) not in found[tables.RUNS.name]
    assert tables.STEPS.partition(old) not in found[tables.STEPS.name]


async def test_an_interrupted_concurrent_detach_is_finished_by_the_next_pass(
    made_days: list[dt.date], later: dt.datetime
) -> None:
    old = TODAY + dt.timedelta(days=6)
    await make_day(old, made_days)
    await add_run(old, 0, "succeeded")
    await keep_legacy()
    pool = await db.get_pool()
    # a DETACH ... CONCURRENTLY cancelled in its second transaction leaves the partition
    # "detach pending": a blocker holding the partition open makes it wait, then it is cancelled
    async with pool.connection() as blocker, pool.connection() as detacher:
        await blocker.execute("BEGIN")
        await blocker.execute(f"SELECT count(*) FROM {tables.STEPS.partition(old)}".encode())
        await detacher.execute("SET statement_timeout = '500ms'")
        detach = f"ALTER TABLE automate_step_run DETACH PARTITION {tables.STEPS.partition(old)} CONCURRENTLY"
        with pytest.raises(psycopg.errors.QueryCanceled):
            await detacher.execute(detach.encode())
        await detacher.execute("RESET statement_timeout")
        await blocker.execute("ROLLBACK")
        cur = await detacher.execute(tables.PENDING_DETACH, {"tables": ["automate_step_run"]})
        assert await cur.fetchall() == [("automate_step_run", tables.STEPS.partition(old))]
    async with pool.connection() as conn:
        report = await partitions.drop_expired(conn, 30 * DAY)
    assert tables.RUNS.partition(old) in report.dropped
    found = await partition_names()
    assert tables.STEPS.partition(old) not in found[tables.STEPS.name]
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT to_regclass(%s)", [tables.STEPS.partition(old)])
        assert (await cur.fetchone()) == (None,)


async def test_ending_runs_reads_only_their_days_partitions() -> None:
    """The journal's UPDATE of ending runs joins a JSON document: without the runs' ids as a
    constant array it would probe every day's partition (30 and more) for every run; measured,
    that cost the drain a fifth of its rate (docs/benchmarks/history.md)."""
    from automate_core.execution import grouped, queries

    day = ids.day_of(ids.bound(TODAY))
    records = [
        {"run_id": ids.bound(TODAY) + n, "status": "succeeded", "error": "", "job_id": n, "claim": 1}
        for n in (1, 2)
    ]
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = psycopg.AsyncClientCursor(conn)
        statement = cur.mogrify(queries.FINISH_RUNS, grouped._params("finish", records))
        await cur.execute(f"EXPLAIN {statement}".encode())
        plan = "\n".join(r[0] for r in await cur.fetchall())
    assert set(re.findall(r" on (automate_run_\w+)", plan)) - {"automate_run_p" + f"{day:%Y%m%d}_pkey"} == {
        tables.RUNS.partition(day)
    }


async def test_a_day_of_events_goes_whole_once_nothing_names_its_events(
    made_days: list[dt.date], later: dt.datetime
) -> None:
    """A run never names an event that is gone (the console and the API read a run with its event),
    and neither does a job; a job still to run keeps its event's day, and so does a dead job the
    policy keeps."""
    from automate_core.models import Event, OutboxJob

    day, runs_day, replay_day = (TODAY + dt.timedelta(days=n) for n in (8, 9, 30))
    for d in (day, runs_day, replay_day):
        await make_day(d, made_days)
    done = await add_event(day, 1, "completed")
    replayed = await add_event(day, 2, "completed")
    retried = await add_event(day, 3, "retry")
    # (the job policy reads the database's clock, not the test's)
    dead = await add_event(day, 4, "dead", settled_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=35))
    await add_event(day, 5)  # an event no workflow matched: no job
    pool = await db.get_pool()

    async def run_of(event_id: int, on: dt.date, n: int) -> None:
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO automate_run (id, workflow_name, event_id, attempt, status, error, trace_id,"
                " mode, started_at, finished_at) VALUES (%s, 'wf', %s, 1, 'succeeded', '', 't', '', %s, %s)",
                [ids.bound(on) + n, event_id, *[dt.datetime.combine(on, dt.time(12), dt.UTC)] * 2],
            )

    await run_of(done, runs_day, 1)  # its day is old too: it goes first, in the same pass
    await run_of(replayed, replay_day, 1)  # replayed "yesterday", by the test's clock
    await keep_legacy()
    policy = RetentionPolicy(completed_jobs=None, dead_jobs=30 * DAY, events=30 * DAY, batch_size=1)

    async def passes() -> tuple[str, ...]:
        report = await Pruner(policy).run_pass()
        found = await partition_names()
        assert (tables.EVENTS.partition(day) in found["automate_event"]) == (
            tables.EVENTS.partition(day) in report.kept
        )
        return report.kept

    # the replay's run keeps the day (and the retry); the settled jobs went (one statement a job)
    assert tables.EVENTS.partition(day) in await passes()
    assert tables.RUNS.partition(runs_day) not in (await partition_names())["automate_run"]
    left = {j.event_id async for j in OutboxJob.objects.filter(event_id__gte=ids.bound(day))}
    assert left == {retried}  # the completed ones and the one dead for 35 days went
    assert await Event.objects.filter(pk__in=[done, replayed, retried, dead]).acount() == 4

    async with pool.connection() as conn:  # the replay's day went
        await conn.execute("DELETE FROM automate_run WHERE event_id = %s", [replayed])
    assert tables.EVENTS.partition(day) in await passes()  # the retry still keeps it

    await OutboxJob.objects.filter(event_id=retried).aupdate(status="completed", completed_at=later)
    assert tables.EVENTS.partition(day) not in await passes()
    assert not await Event.objects.filter(pk__gte=ids.bound(day), pk__lt=ids.bound(runs_day)).aexists()
    assert not await OutboxJob.objects.filter(event_id__gte=ids.bound(day)).aexists()
