"""The outbox's transitions on the real database: claims never overlap, stale claims cannot write."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from automate_core import db
from automate_core.ingest.ingestor import emit
from automate_core.models import OutboxJob
from automate_core.outbox import queries
from automate_core.outbox.store import OutboxStore

pytestmark = pytest.mark.usefixtures("live_db")


def make_events(n: int) -> None:
    for i in range(n):
        emit("test", "t", {"i": i})


async def test_claim_sets_lease_and_counts_the_attempt() -> None:
    await sync_to_async(make_events)(3)
    store = OutboxStore()
    jobs = await store.claim_batch(10, "w1", 30)
    assert len(jobs) == 3
    assert all(j.attempts == 1 and j.event is not None for j in jobs)
    rows = [
        r async for r in OutboxJob.objects.order_by("id").values("status", "lease_owner", "lease_expires_at")
    ]
    assert all(r["status"] == "running" and r["lease_owner"] == "w1" for r in rows)
    assert all(r["lease_expires_at"] is not None for r in rows)


async def test_concurrent_claims_never_overlap() -> None:
    await sync_to_async(make_events)(200)
    store = OutboxStore()
    batches = await asyncio.gather(*(store.claim_batch(15, f"w{i}", 30) for i in range(12)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 180


async def test_completion_needs_the_current_claim() -> None:
    await sync_to_async(make_events)(1)
    store = OutboxStore()
    (first,) = await store.claim_batch(1, "slow-worker", 30)
    # the lease expires and the rescuer gives the job to another worker
    await OutboxJob.objects.filter(pk=first.id).aupdate(lease_expires_at="2000-01-01T00:00:00Z")
    assert await store.rescue_expired() == [(first.id, "retry")]
    (second,) = await store.claim_batch(1, "new-worker", 30)
    assert second.id == first.id and second.attempts == 2
    assert await store.complete([first]) == set()  # the stale claim writes nothing
    assert await store.fail(first, error="late", delay=0, dead=True, max_attempts=5) is False
    assert await store.complete([second]) == {first.id}
    job = await OutboxJob.objects.aget(pk=first.id)
    assert job.status == "completed" and job.last_error == ""


async def test_rescue_makes_a_job_dead_when_its_last_attempt_expired() -> None:
    await sync_to_async(make_events)(1)
    await OutboxJob.objects.aupdate(max_attempts=1)
    store = OutboxStore()
    (job,) = await store.claim_batch(1, "w", 30)
    await OutboxJob.objects.filter(pk=job.id).aupdate(lease_expires_at="2000-01-01T00:00:00Z")
    assert await store.rescue_expired() == [(job.id, "dead")]
    row = await OutboxJob.objects.aget(pk=job.id)
    assert "lease expired" in row.last_error


async def test_release_gives_the_job_back_without_spending_an_attempt() -> None:
    await sync_to_async(make_events)(1)
    store = OutboxStore()
    (job,) = await store.claim_batch(1, "w", 30)
    assert await store.release([job]) == {job.id}
    row = await OutboxJob.objects.aget(pk=job.id)
    assert (row.status, row.attempts) == ("ready", 0)


async def test_future_retries_are_not_claimed() -> None:
    await sync_to_async(make_events)(1)
    store = OutboxStore()
    (job,) = await store.claim_batch(1, "w", 30)
    await store.fail(job, error="boom", delay=3600, dead=False, max_attempts=5)
    assert await store.claim_batch(5, "w", 30) == []


async def test_claim_reads_the_partial_index() -> None:
    """The claim plan must use automate_outbox_claimable, not scan the table."""
    await sync_to_async(make_events)(50)
    pool = await db.get_pool()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("ANALYZE automate_outbox_job")
        cur = await conn.execute(
            "EXPLAIN (FORMAT JSON) " + queries.CLAIM_BATCH, {"limit": 10, "owner": "x", "lease": 1}
        )
        plan = json.dumps((await cur.fetchone())[0])
    assert "automate_outbox_claimable" in plan


async def test_snooze_puts_the_job_back_without_spending_the_attempt() -> None:
    await sync_to_async(make_events)(1)
    store = OutboxStore()
    (job,) = await store.claim_batch(1, "w", 30)
    assert await store.snooze(job, 3600) is True
    row = await OutboxJob.objects.aget(pk=job.id)
    assert (row.status, row.attempts) == ("retry", 0)
    assert await store.claim_batch(1, "w", 30) == []  # not before its time
