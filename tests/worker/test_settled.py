"""Completed jobs leave the queue for the day of their completion (history.settled, migration 0018),
keep their id and what the readers of the job table see, and go a whole day at a time."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from automate_core import db
from automate_core.history import settled, tables
from automate_core.ingest.ingestor import emit
from automate_core.models import OutboxJob
from automate_core.outbox.replay import replay_dead
from automate_core.outbox.retention import Pruner, RetentionPolicy
from automate_core.outbox.store import Failure, OutboxStore

pytestmark = pytest.mark.usefixtures("live_db")

store = OutboxStore()
TODAY = dt.datetime.now(dt.UTC).date()


def placed() -> dict[int, str]:
    """Each job's partition."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, tableoid::regclass::text FROM automate_outbox_job")
        return dict(cursor.fetchall())


async def test_a_completed_job_moves_to_its_day_with_its_id_and_everything_it_held() -> None:
    first = await sync_to_async(emit)("shop", "order.created", {"n": 1})
    second = await sync_to_async(emit)("shop", "order.created", {"n": 2})
    claimed = await store.claim_batch(10, "w1")
    assert {j.event.id for j in claimed if j.event} == {first.event_id, second.event_id}
    done, other = sorted(claimed, key=lambda j: j.id)
    assert await store.complete([done], "w1") == {done.id}

    where = await sync_to_async(placed)()
    assert where == {done.id: settled.partition(TODAY), other.id: settled.LIVE}
    row = await OutboxJob.objects.aget(pk=done.id)  # the model reads the whole table
    assert (row.status, row.settled, row.event_id, row.attempts, row.lease_owner) == (
        "completed", True, first.event_id, 1, "",
    )  # fmt: skip
    assert row.completed_at is not None and row.completed_at.date() == TODAY
    # fencing: a second completion of the same claim, or another worker's, matches nothing
    assert await store.complete([done], "w1") == set()
    assert await store.complete([other], "w2") == set()
    # the job still running keeps its lease; the completed one is no longer running anywhere
    assert await store.heartbeat([done, other], "w1") == {other.id}
    assert await store.fail([Failure(done, "late", False, 0)], "w1") == set()
    assert await OutboxJob.objects.filter(status="completed").acount() == 1


async def test_a_task_result_merges_as_it_moves() -> None:
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO automate_outbox_job (kind, status, attempts, max_attempts, lease_owner,"
            " last_error, result) VALUES ('task', 'ready', 0, 5, '', '', %s) RETURNING id",
            [json.dumps({"errors": [{"traceback": "first"}], "worker_ids": ["w0"]})],
        )
        row = await cur.fetchone()
        assert row is not None
    (claimed,) = await store.claim_batch(1, "w1")
    result = {"return_value": 42, "errors": [], "worker_ids": ["w1"]}
    assert await store.complete([claimed], "w1", [result]) == {claimed.id}
    job = await OutboxJob.objects.aget(pk=row[0])
    assert job.result == {
        "return_value": 42, "errors": [{"traceback": "first"}], "worker_ids": ["w0", "w1"],
    }  # fmt: skip


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        return json.dumps(cursor.fetchone()[0])


@pytest.mark.parametrize(
    "where",
    [
        "status = 'ready'",
        "status IN ('ready', 'retry')",
        "status = 'dead'",
        "lease_expires_at IS NOT NULL AND status = 'running'",
    ],
)
async def test_a_reader_of_the_queue_is_planned_on_the_queue_alone(where: str) -> None:
    job = await sync_to_async(emit)("shop", "order.created", {})
    (claimed,) = await store.claim_batch(1, "w1")
    await store.complete([claimed], "w1")
    assert job.event_id is not None
    found = await sync_to_async(plan)(f"SELECT count(*) FROM automate_outbox_job WHERE {where}")
    assert settled.LIVE in found
    assert "automate_outbox_job_done" not in found, found
    # completed jobs are read where they are
    found = await sync_to_async(plan)("SELECT count(*) FROM automate_outbox_job WHERE status = 'completed'")
    assert settled.partition(TODAY) in found


def make_day(day: dt.date) -> None:
    with connection.cursor() as cursor:
        for statement in settled.create_partition(day):
            cursor.execute(statement)


def completed_on(day: dt.date) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO automate_outbox_job (kind, status, attempts, max_attempts, lease_owner, last_error,"
            " completed_at, settled) VALUES ('event', 'completed', 1, 5, '', '', %s, true) RETURNING id",
            [dt.datetime.combine(day, dt.time(12), dt.UTC)],
        )
        return int(cursor.fetchone()[0])


def days() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(tables.LIST_PARTITIONS.replace("%(tables)s", "%s"), [[settled.DONE]])
        return {r[1] for r in cursor.fetchall()}


async def test_retention_drops_a_day_of_completed_jobs_whole_and_keeps_the_younger_ones() -> None:
    old, yesterday = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=1)
    for day in (old, yesterday):
        await sync_to_async(make_day)(day)
    gone = await sync_to_async(completed_on)(old)
    kept = await sync_to_async(completed_on)(yesterday)
    live = await sync_to_async(emit)("shop", "order.created", {})
    try:
        policy = RetentionPolicy(completed_jobs=2 * 86400.0, dead_jobs=None, events=None)
        report = await Pruner(policy).run_pass()
        assert report.dropped == (settled.partition(old),)
        assert report.jobs == 0  # not a row deleted
        left = await sync_to_async(days)()
        assert settled.partition(old) not in left and settled.partition(yesterday) in left
        ids = {j async for j in OutboxJob.objects.values_list("id", flat=True)}
        assert gone not in ids and kept in ids and len(ids) == 2
        assert await OutboxJob.objects.filter(event_id=live.event_id, status="ready").aexists()
    finally:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            await conn.execute(
                f"DROP TABLE IF EXISTS {settled.partition(old)}, {settled.partition(yesterday)}"
            )


async def test_the_days_ahead_are_made_and_a_missing_day_comes_back() -> None:
    from automate_core.history import partitions

    ahead = TODAY + dt.timedelta(days=2)
    pool = await db.get_pool()
    async with pool.connection() as conn:
        await conn.execute(f"DROP TABLE {settled.partition(ahead)}")
    assert settled.partition(ahead) not in await sync_to_async(days)()
    async with pool.connection() as conn:
        made = await partitions.ensure_ahead(conn, 2)
    assert made >= 1
    assert {settled.partition(TODAY + dt.timedelta(days=n)) for n in range(3)} <= await sync_to_async(days)()


async def test_a_dead_job_whose_replay_completed_is_not_replayed_twice() -> None:
    await sync_to_async(emit)("shop", "order.created", {})
    (claimed,) = await store.claim_batch(1, "w1")
    await store.fail([Failure(claimed, "boom", True, 0)], "w1")
    (replay,) = await sync_to_async(replay_dead)(ids=[claimed.id])
    (again,) = await store.claim_batch(1, "w1")
    assert again.id == replay
    await store.complete([again], "w1")  # the replay is in today's completed jobs now
    where: dict[int, Any] = await sync_to_async(placed)()
    assert where[replay] == settled.partition(TODAY)
    assert await sync_to_async(replay_dead)(ids=[claimed.id]) == []
    assert await OutboxJob.objects.filter(replay_of_id=claimed.id).acount() == 1
