"""Every transition of the outbox state machine on the real database, and every guard.

The state machine is in docs/architecture.md (section 2). Each settle transition must write only
while the claim it names holds: the job is running, at that attempt, leased by that worker.
"""

from __future__ import annotations

import asyncio
import json
from typing import LiteralString

import pytest
from psycopg import sql

from automate_core import db
from automate_core.models import JobStatus, OutboxJob
from automate_core.outbox import queries
from automate_core.outbox.store import ClaimedJob, Failure, OutboxStore
from tests.worker.conftest import amake_events

pytestmark = pytest.mark.usefixtures("live_db")

store = OutboxStore()


async def expire(job: ClaimedJob) -> None:
    await OutboxJob.objects.filter(pk=job.id).aupdate(lease_expires_at="2000-01-01T00:00:00Z")


async def row(job: ClaimedJob) -> OutboxJob:
    return await OutboxJob.objects.aget(pk=job.id)


async def claim_one(owner: str = "w1") -> ClaimedJob:
    (job,) = await store.claim_batch(1, owner, 30)
    return job


async def test_claim_sets_lease_counts_the_attempt_and_joins_the_event() -> None:
    await amake_events(3)
    jobs = await store.claim_batch(10, "w1", 30)
    assert len(jobs) == 3
    assert all(j.attempts == 1 and j.releases == 0 and j.spent == 1 for j in jobs)
    assert [j.event.payload for j in jobs if j.event] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert all(j.generation > 0 for j in jobs)
    rows = [r async for r in OutboxJob.objects.values("status", "lease_owner", "lease_expires_at")]
    assert all(r["status"] == "running" and r["lease_owner"] == "w1" for r in rows)
    assert all(r["lease_expires_at"] is not None for r in rows)


async def test_claim_takes_the_oldest_available_first_and_at_most_the_limit() -> None:
    await amake_events(5)
    first = await store.claim_batch(2, "w", 30)
    second = await store.claim_batch(10, "w", 30)
    assert [j.id for j in first] == sorted(j.id for j in first)
    assert max(j.id for j in first) < min(j.id for j in second)
    assert (len(first), len(second)) == (2, 3)
    assert await store.claim_batch(0, "w", 30) == []


async def test_concurrent_claims_never_overlap() -> None:
    await amake_events(200)
    batches = await asyncio.gather(*(store.claim_batch(15, f"w{i}", 30) for i in range(12)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 180


async def test_complete_writes_only_for_the_current_claim() -> None:
    """Stale-lease fencing: the worker whose lease expired cannot overwrite the new claim's outcome."""
    await amake_events(1)
    first = await claim_one("slow-worker")
    await expire(first)
    assert await store.rescue_expired() == [(first.id, "retry")]
    second = await claim_one("new-worker")
    assert (second.id, second.attempts) == (first.id, 2)
    # the stale claim writes nothing, by any transition
    assert await store.complete([first], "slow-worker") == set()
    assert await store.fail([Failure(first, "late", dead=True)], "slow-worker") == set()
    assert await store.release([first], "slow-worker") == set()
    assert await store.heartbeat([first], "slow-worker", 30) == set()
    assert (await row(second)).status == "running"
    assert await store.complete([second], "new-worker") == {first.id}
    done = await row(second)
    assert (done.status, done.last_error, done.lease_owner) == ("completed", "", "")
    assert done.completed_at is not None


async def test_settling_needs_the_lease_owner_and_attempt_and_running_status() -> None:
    await amake_events(1)
    job = await claim_one("w1")
    wrong_attempt = ClaimedJob(job.id, job.kind, job.attempts + 1, job.max_attempts, None, None, 0)
    assert await store.complete([job], "w2") == set()  # not the lease owner
    assert await store.complete([wrong_attempt], "w1") == set()  # not this attempt
    assert await store.heartbeat([job], "w2", 30) == set()
    assert await store.complete([job], "w1") == {job.id}
    # completed: nothing moves it any more, not even its own claim
    assert await store.fail([Failure(job, "x", dead=False)], "w1") == set()
    assert await store.release([job], "w1") == set()
    assert await store.complete([job], "w1") == set()
    assert (await row(job)).status == "completed"


async def test_a_released_claims_token_is_never_reused() -> None:
    """Release does not give the attempt number back: a re-claim gets a new token."""
    await amake_events(1)
    first = await claim_one("w1")
    assert await store.release([first], "w1") == {first.id}
    again = await claim_one("w1")
    assert again.attempts == 2 and again.releases == 1 and again.spent == 1
    assert await store.complete([first], "w1") == set()  # the old token is dead
    assert await store.complete([again], "w1") == {first.id}


async def test_fail_schedules_a_retry_after_its_delay_then_it_is_claimable() -> None:
    await amake_events(1)
    job = await claim_one()
    failure = Failure(job, "remote said no", dead=False, delay=3600, max_attempts=7)
    assert await store.fail([failure], "w1") == {job.id}
    r = await row(job)
    assert (r.status, r.last_error, r.max_attempts, r.lease_owner) == ("retry", "remote said no", 7, "")
    assert await store.claim_batch(5, "w", 30) == []  # not before its time
    await OutboxJob.objects.filter(pk=job.id).aupdate(available_at="2000-01-01T00:00:00Z")
    (retried,) = await store.claim_batch(5, "w", 30)
    assert (retried.id, retried.attempts) == (job.id, 2)


async def test_fail_as_dead_is_final_and_leaves_the_claim_index() -> None:
    await amake_events(1)
    job = await claim_one()
    assert await store.fail([Failure(job, "cannot ever work", dead=True)], "w1") == {job.id}
    assert (await row(job)).status == JobStatus.DEAD
    await OutboxJob.objects.filter(pk=job.id).aupdate(available_at="2000-01-01T00:00:00Z")
    assert await store.claim_batch(5, "w", 30) == []


async def test_one_statement_settles_a_mixed_batch() -> None:
    await amake_events(4)
    a, b, c, d = await store.claim_batch(4, "w1", 30)
    assert await store.complete([a, b], "w1", [None, {"return_value": 1}]) == {a.id, b.id}
    failures = [Failure(c, "again", dead=False, delay=60), Failure(d, "never", dead=True)]
    assert await store.fail(failures, "w1") == {c.id, d.id}
    statuses = {r.pk: r.status async for r in OutboxJob.objects.all()}
    assert statuses == {a.id: "completed", b.id: "completed", c.id: "retry", d.id: "dead"}
    assert (await row(b)).result == {"return_value": 1, "errors": [], "worker_ids": []}


async def test_heartbeat_extends_only_held_leases() -> None:
    await amake_events(2)
    mine, theirs = await store.claim_batch(2, "w1", 1)
    await OutboxJob.objects.filter(pk=theirs.id).aupdate(lease_owner="w2")
    before = (await row(mine)).lease_expires_at
    assert await store.heartbeat([mine, theirs], "w1", 300) == {mine.id}
    after = (await row(mine)).lease_expires_at
    assert before is not None and after is not None and (after - before).total_seconds() > 250


async def test_rescue_moves_expired_leases_to_retry_and_counts_the_attempt() -> None:
    await amake_events(2)
    dead_worker, alive = await store.claim_batch(2, "w1", 30)
    await expire(dead_worker)
    assert await store.rescue_expired() == [(dead_worker.id, "retry")]
    r = await row(dead_worker)
    assert (r.status, r.attempts, r.lease_owner) == ("retry", 1, "")
    assert "LeaseExpired" in r.last_error and "w1" in r.last_error
    assert (await row(alive)).status == "running"  # its lease is still valid
    assert await store.rescue_expired() == []


async def test_rescue_makes_a_job_dead_when_its_last_attempt_expired() -> None:
    """A job that kills its worker every time ends dead instead of looping."""
    await amake_events(1)
    await OutboxJob.objects.aupdate(max_attempts=2)
    for attempt in (1, 2):
        job = await claim_one()
        assert job.attempts == attempt
        await expire(job)
        (rescued,) = await store.rescue_expired()
    assert rescued == (job.id, "dead")
    assert (await row(job)).status == "dead"


async def test_released_claims_do_not_count_toward_the_attempts() -> None:
    await amake_events(1)
    await OutboxJob.objects.aupdate(max_attempts=1)
    job = await claim_one()
    await store.release([job], "w1")  # graceful shutdown: not spent
    job = await claim_one()
    await expire(job)
    assert await store.rescue_expired() == [(job.id, "dead")]  # now the one attempt is spent
    r = await row(job)
    assert (r.attempts, r.releases, r.spent_attempts) == (2, 1, 1)


async def test_release_with_a_delay_is_a_snooze() -> None:
    await amake_events(1)
    job = await claim_one()
    assert await store.release([job], "w1", [3600]) == {job.id}
    r = await row(job)
    assert (r.status, r.attempts, r.releases) == ("retry", 1, 1)
    assert await store.claim_batch(1, "w", 30) == []  # not before its time


async def test_release_now_is_ready_at_once() -> None:
    await amake_events(1)
    job = await claim_one()
    assert await store.release([job], "w1") == {job.id}
    assert (await row(job)).status == "ready"
    assert [j.id for j in await store.claim_batch(1, "w2", 30)] == [job.id]


async def plan(query: LiteralString, params: dict[str, object], *, seqscan: bool = True) -> str:
    pool = await db.get_pool()
    async with pool.connection() as conn, conn.transaction():
        if not seqscan:
            await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("ANALYZE automate_outbox_job")
        cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(query), params)
        fetched = await cur.fetchone()
        assert fetched is not None
        return json.dumps(fetched[0])


async def test_claim_reads_the_partial_index() -> None:
    """The claim plan must use automate_outbox_claimable, not scan the table."""
    await amake_events(50)
    found = await plan(queries.CLAIM_BATCH, {"limit": 10, "owner": "x", "lease": 1}, seqscan=False)
    assert "automate_outbox_claimable" in found


async def test_settle_statements_find_their_rows_by_primary_key() -> None:
    """Not by scanning the leased index: it looks cheap with few running jobs in the statistics,
    but holds a dead entry for every job settled since the last vacuum."""
    await amake_events(300)
    jobs = await store.claim_batch(3, "w", 30)  # a few running, many ready: the statistics of a drain
    claims = {"ids": [j.id for j in jobs] * 30, "attempts": [1] * 90, "owner": "w"}
    statements: list[tuple[LiteralString, dict[str, object]]] = [
        (queries.COMPLETE, {**claims, "results": [None] * 90}),
        (queries.FAIL, {**claims, "statuses": ["retry"] * 90, "delays": [1.0] * 90,
                        "errors": [""] * 90, "max_attempts": [5] * 90, "results": [None] * 90}),
        (queries.RELEASE, {**claims, "delays": [0.0] * 90}),
        (queries.HEARTBEAT, {**claims, "lease": 30}),
    ]  # fmt: skip
    for query, params in statements:
        found = await plan(query, params, seqscan=False)  # this table is small; a real one is not
        assert "automate_outbox_job_pkey" in found and "automate_outbox_leased" not in found, query


async def test_rescue_reads_the_leased_index() -> None:
    await amake_events(300)
    await store.claim_batch(3, "w", 30)
    assert "automate_outbox_leased" in await plan(queries.RESCUE_EXPIRED, {"limit": 500}, seqscan=False)


async def test_a_nul_in_an_error_does_not_stop_the_batch() -> None:
    """PostgreSQL stores no NUL in text; a remote error message with one is stored with U+FFFD."""
    await amake_events(2)
    a, b = await store.claim_batch(2, "w", 30)
    failures = [Failure(a, "bad\x00byte", dead=False, delay=60), Failure(b, "fine", dead=False, delay=60)]
    assert await store.fail(failures, "w") == {a.id, b.id}
    assert (await row(a)).last_error == "bad\ufffdbyte"
