"""The claim order (issue 13): priority with aging, queues, fairness per key, on the real database.

The rank is computed by the database (migration 0013): ``available_at - priority x aging``, and for
a job with a fair key no earlier than its key's last claimable job plus a quantum. The claim takes
the lowest ranks first, from every queue or from the worker's queues (``--queue``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Q
from django.tasks import task_backends
from django.test import override_settings

from automate_core import db
from automate_core.history import ids as history_ids
from automate_core.ingest.sources import parse_options
from automate_core.models import OutboxJob
from automate_core.outbox import queries
from automate_core.outbox.store import OutboxStore
from automate_core.worker.pool import WorkerPool
from tests.helpers import eventually
from tests.worker import tasks
from tests.worker.conftest import options, running
from tests.worker.test_faults import PROBE_WORKFLOW, Workers, probe_connector, workers  # noqa: F401

pytestmark = pytest.mark.usefixtures("live_db")

store = OutboxStore()

# Events and their jobs in one statement (as ingest writes them), on a queue, with a priority and
# a fair key; ``offset`` seconds from now is when they become available.
INSERT_JOBS = """
WITH e AS (
    INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
    SELECT %(source)s, 'order.created', jsonb_build_object('tag', %(tag)s::text, 'i', g), '{}'::jsonb,
           md5(random()::text), now()
    FROM generate_series(1, %(n)s) AS g
    RETURNING id
)
INSERT INTO automate_outbox_job
    (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
     queue, priority, fair_key, created_at, updated_at)
SELECT id, 'event', 'ready', 0, 5, now() + make_interval(secs => %(offset)s), '', '',
       %(queue)s, %(priority)s, %(fair_key)s, now(), now()
FROM e ORDER BY id
RETURNING id
"""


async def insert(
    n: int = 1,
    *,
    tag: str = "",
    queue: str = "default",
    priority: int = 0,
    fair_key: str = "",
    offset: float = 0.0,
    source: str = "load",
) -> list[int]:
    pool = await db.get_pool()
    async with pool.connection() as conn:
        params = {"n": n, "tag": tag, "queue": queue, "priority": priority, "fair_key": fair_key,
                  "offset": offset, "source": source}  # fmt: skip
        cur = await conn.execute(INSERT_JOBS, params)
        return [r[0] for r in await cur.fetchall()]


async def sql(query: Any, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(query, params or {})
        return await cur.fetchall() if cur.description else []


@pytest.fixture
async def tuning() -> AsyncIterator[Any]:
    """``await tuning(aging, quantum)`` writes the claim order's constants; the defaults come back."""

    async def set_tuning(aging: float = 1.0, quantum: float = 0.01) -> None:
        await store.set_tuning(aging, quantum)

    yield set_tuning
    await store.set_tuning(1.0, 0.01)


async def claim_ids(limit: int = 1, queues: list[str] | None = None) -> list[int]:
    jobs = await store.claim_batch(limit, "w", 30, queues)
    return [j.id for j in sorted(jobs, key=lambda j: j.id)]


async def claim_in_order(limit: int = 1, queues: list[str] | None = None) -> list[int]:
    """Claim one job at a time (the claim's order is only observable one by one)."""
    order = []
    while ids := await claim_ids(1, queues):
        order += ids
        if len(order) >= limit:
            break
    return order


# -- priority -------------------------------------------------------------------------------------


async def test_higher_priority_first_ties_in_arrival_order() -> None:
    low = await insert(2, priority=-5)
    mid = await insert(2)
    high = await insert(2, priority=10)
    assert await claim_in_order(6) == high + mid + low


async def test_aging_bounds_what_may_overtake_a_low_priority_job(tuning: Any) -> None:
    """A job is overtaken only by jobs that became available less than (their priority - its
    priority) x aging seconds after it: here 10 points x 0.5 s = 5 s."""
    await tuning(aging=0.5)
    low = (await insert(offset=-60))[0]
    high = [(await insert(priority=10, offset=-60 + k + 0.5))[0] for k in range(12)]  # 0.5 s, 1.5 s...
    order = await claim_in_order(13)
    assert order == [*high[:5], low, *high[5:]]  # the five within 5 s of it go first, no others
    # a long aging comes close to strict priority: here every one of them goes first
    await tuning(aging=1000.0)
    low = (await insert(offset=-60))[0]
    high = [(await insert(priority=10, offset=-60 + k + 0.5))[0] for k in range(12)]
    assert await claim_in_order(13) == [*high, low]


async def test_a_stream_of_high_priority_jobs_does_not_starve_a_low_one() -> None:
    """A worker slower than the stream of priority-100 jobs still claims the priority -100 job
    within the bound: 200 points x 0.5 ms = 0.1 s after it, the stream's new jobs rank behind it."""
    bound = 200 * 0.0005
    with override_settings(AUTOMATE_PRIORITY_AGING=0.0005):
        await store.set_tuning(0.0005, 0.01)
        await insert(300, priority=100)  # a backlog ahead of it: the worker is busy past the bound
        (low,) = await insert(priority=-100)
        stop = asyncio.Event()

        async def stream() -> None:
            while not stop.is_set():  # about 500 jobs a second, more than the worker drains
                await insert(5, priority=100)
                await asyncio.sleep(0.01)  # the stream's pace, not a wait for anything

        producer = asyncio.create_task(stream())
        try:
            async with running(WorkerPool(options(concurrency=1, batch_size=1))):
                await eventually(lambda: OutboxJob.objects.get(pk=low).status == "completed", within=20)
        finally:
            stop.set()
            await producer
            await store.set_tuning(1.0, 0.01)
    job = await OutboxJob.objects.aget(pk=low)
    assert job.completed_at is not None
    # claimed while higher priorities waited: jobs of the stream that were ready before it ran
    # (by the database's clock) were claimed after it (a queue that had run empty proves nothing)
    waiting = OutboxJob.objects.filter(
        priority=100, available_at__lt=job.completed_at - timedelta(seconds=0.05)
    )
    assert await waiting.filter(Q(status="ready") | Q(completed_at__gt=job.completed_at)).aexists()
    late = OutboxJob.objects.filter(
        priority=100, status="completed", available_at__gt=job.available_at + timedelta(seconds=bound)
    )
    # no job that arrived past the bound was claimed before it (one claim at a time: the worker
    # claims its next job while the last one's completion is written, hence the claim's time)
    assert job.completed_at is not None
    assert not await late.filter(completed_at__lt=job.completed_at - timedelta(seconds=0.05)).aexists()


async def test_retries_snoozes_and_rescues_keep_the_priority_and_place() -> None:
    (job_id,) = await insert(priority=7, offset=-5)
    before = await OutboxJob.objects.aget(pk=job_id)
    await store.claim_batch(1, "w", 30)
    await sql(
        "UPDATE automate_outbox_job SET lease_expires_at = now() - interval '1 s' WHERE id = %(id)s",
        {"id": job_id},
    )  # fmt: skip  (the lease ran out)
    assert await store.rescue_expired() == [(job_id, "retry")]
    rescued = await OutboxJob.objects.aget(pk=job_id)
    assert (rescued.priority, rescued.queue, rescued.claim_rank) == (7, "default", before.claim_rank)
    (again,) = await store.claim_batch(1, "w", 30)
    assert await store.release([again], "w", [0.0]) == {job_id}  # handed back: same place
    assert (await OutboxJob.objects.aget(pk=job_id)).claim_rank == before.claim_rank
    (again,) = await store.claim_batch(1, "w", 30)
    assert await store.release([again], "w", [3600.0]) == {job_id}  # a snooze: later, same priority
    snoozed = await OutboxJob.objects.aget(pk=job_id)
    assert snoozed.priority == 7 and snoozed.claim_rank == snoozed.available_at - timedelta(seconds=7)
    assert await claim_ids(5) == []


# -- queues ---------------------------------------------------------------------------------------


async def test_a_claim_takes_only_the_queues_it_names() -> None:
    billing = await insert(3, queue="billing", offset=-3)
    default = await insert(3, offset=-2)
    other = await insert(3, queue="other", offset=-1)
    assert await claim_ids(10, ["billing"]) == billing
    assert await claim_ids(2, ["other", "default"]) == default[:2]  # claim order across the queues
    assert await claim_ids(10, ["nothing-here"]) == []
    assert await claim_ids(10) == default[2:] + other  # no queues named: every queue


async def test_two_worker_processes_claim_only_their_queues(workers: Workers) -> None:  # noqa: F811
    path = workers.tmp / "probe.yaml"
    path.write_text(PROBE_WORKFLOW % 0.001)
    from automate_core import definitions

    await sync_to_async(definitions.load_file)(path)
    billing = set(await insert(40, queue="billing", source="shop"))
    default = set(await insert(40, source="shop"))
    a = workers.start("--queue", "billing", "--concurrency", "4")
    b = workers.start("--queue", "default", "--queue", "unused", "--concurrency", "4")
    await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 80, within=40)
    assert workers.stop(a) == 0 and workers.stop(b) == 0
    by_job = {}
    events = {e: j for j, e in await sql("SELECT id, event_id FROM automate_outbox_job")}
    for event_id, calls in workers.calls().items():
        by_job[events[event_id]] = {c["pid"] for c in calls}
    assert all(by_job[j] == {a.pid} for j in billing), "a billing job ran outside the billing worker"
    assert all(by_job[j] == {b.pid} for j in default), "a default job ran outside the default worker"


async def test_a_killed_worker_s_jobs_are_rescued_on_their_queue_with_their_rank(
    workers: Workers,  # noqa: F811
) -> None:
    path = workers.tmp / "probe.yaml"
    path.write_text(PROBE_WORKFLOW % 30)  # long enough to be held when the worker dies
    from automate_core import definitions

    await sync_to_async(definitions.load_file)(path)
    ids = await insert(4, queue="billing", priority=9, fair_key="tenant-1", source="shop")
    ranks = dict(await sql("SELECT id, claim_rank FROM automate_outbox_job WHERE id = ANY(%(ids)s)",
                           {"ids": ids}))  # fmt: skip
    victim = workers.start("--queue", "billing", "--lease", "1", "--no-maintenance")
    await eventually(lambda: OutboxJob.objects.filter(status="running").count() == 4, within=30)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    # the rescue (any worker's) once the lease has expired
    rescued: list[tuple[int, str]] = []

    def expired() -> bool:
        return not OutboxJob.objects.filter(status="running", lease_expires_at__gt=_now()).exists()

    await eventually(expired, within=10)
    rescued = await store.rescue_expired()
    assert sorted(rescued) == sorted((i, "retry") for i in ids)
    after = await sync_to_async(lambda: list(OutboxJob.objects.filter(pk__in=ids)))()
    assert all((j.queue, j.priority, j.fair_key) == ("billing", 9, "tenant-1") for j in after)
    assert {j.id: j.claim_rank for j in after} == ranks  # back in the place they had
    assert await claim_ids(10, ["default"]) == []  # still not another queue's
    assert sorted(await claim_ids(10, ["billing"])) == ids


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


# -- Django tasks ---------------------------------------------------------------------------------


@pytest.fixture
def task_queues() -> Iterator[None]:
    with override_settings(
        TASKS={
            "default": {
                "BACKEND": "automate_core.tasks.backend.OutboxTaskBackend",
                "QUEUES": ["default", "billing"],
            }
        }
    ):
        yield


@pytest.mark.usefixtures("task_queues")
async def test_django_tasks_honour_priority_and_queue_name() -> None:
    assert task_backends["default"].supports_priority
    low = await tasks.add.using(priority=-20).aenqueue(1, 1)
    plain = await tasks.add.aenqueue(2, 2)
    urgent = await tasks.add.using(priority=50).aenqueue(3, 3)
    billed = await tasks.add.using(queue_name="billing", priority=100).aenqueue(4, 4)
    job = await OutboxJob.objects.aget(pk=int(billed.id))
    assert job.payload is not None
    assert (job.queue, job.priority, job.payload["queue"]) == ("billing", 100, "billing")
    assert await claim_in_order(3, ["default"]) == [int(urgent.id), int(plain.id), int(low.id)]
    await OutboxJob.objects.filter(queue="default").aupdate(status="completed")
    async with running(WorkerPool(options(queues=("billing",)))):
        await eventually(lambda: task_backends["default"].get_result(billed.id).is_finished, within=10)
    result = await tasks.add.aget_result(billed.id)
    assert result.return_value == 8


# -- fairness -------------------------------------------------------------------------------------


async def test_a_flooding_key_does_not_delay_another_key(tuning: Any) -> None:
    """B's job waits behind at most (B's arrival - the start of A's backlog) / quantum + 1 of A's
    jobs, however large A's flood is (here: none claimed yet, the worst case)."""
    await tuning(quantum=0.1)
    flood = await insert(3000, fair_key="tenant-a")
    (single,) = await insert(fair_key="tenant-b")
    ranks = dict(await sql("SELECT id, claim_rank FROM automate_outbox_job"))
    spacing = {round((ranks[b] - ranks[a]).total_seconds(), 6) for a, b in itertools.pairwise(flood)}
    assert spacing == {0.1}  # the flood is spread out, one quantum a job
    bound = int((ranks[single] - ranks[flood[0]]).total_seconds() / 0.1) + 1
    ahead = sum(ranks[i] < ranks[single] for i in flood)
    assert ahead <= bound < 49
    assert single in await claim_ids(50)  # in the first claim, not behind 3,000 jobs


async def test_without_a_fair_key_a_flood_comes_first() -> None:
    flood = await insert(500)
    (single,) = await insert()
    assert await claim_ids(500) == flood and await claim_ids(1) == [single]


async def test_fairness_is_per_key_queue_and_priority_and_resets_when_the_key_is_drained() -> None:
    await insert(100, fair_key="a")
    (other_queue,) = await insert(fair_key="a", queue="billing")
    (other_priority,) = await insert(fair_key="a", priority=1)
    rows = dict(await sql("SELECT id, claim_rank - available_at FROM automate_outbox_job"))
    assert rows[other_queue] == timedelta(0)  # its key has no backlog on that queue
    assert rows[other_priority] == timedelta(seconds=-1)  # nor at that priority: just the aging
    await claim_ids(200)
    (fresh,) = await insert(fair_key="a")  # the key's backlog is gone: no lag left to pay
    assert dict(await sql("SELECT id, claim_rank - available_at FROM automate_outbox_job"))[
        fresh
    ] == timedelta(0)


async def test_a_worker_claims_the_single_job_of_another_key_within_the_bound() -> None:
    """Tenant A floods 20,000 jobs, a worker drains them; tenant B's one job, sent in the middle
    of the flood, is done long before A's backlog is."""
    await insert(20_000, fair_key="a")
    async with running(WorkerPool(options(concurrency=16, batch_size=16))):
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() > 200, within=20)
        sent = time.monotonic()
        (single,) = await insert(fair_key="b")
        await eventually(lambda: OutboxJob.objects.get(pk=single).status == "completed", within=10)
        waited = time.monotonic() - sent
        left = await OutboxJob.objects.filter(status="ready", fair_key="a").acount()
    assert left > 10_000, "B was claimed only after the flood"
    assert waited < 5.0


def test_a_source_names_its_jobs_queue_priority_and_fair_key() -> None:
    src = parse_options(
        "shop", "none", {"queue": "billing", "priority": 5, "fairness": {"header": "X-Tenant"}}
    )
    assert (src.queue, src.priority) == ("billing", 5)
    assert src.fair_key({"x-tenant": "acme"}, {}) == "shop:acme"
    assert src.fair_key({}, {}) == "shop"  # no value: the source is the key
    by_path = parse_options("shop", "none", {"fairness": {"path": "data.tenant"}})
    assert by_path.fair_key({}, {"data": {"tenant": 42}}) == "shop:42"
    assert parse_options("shop", "none", {"fairness": "source"}).fair_key({}, {}) == "shop"
    assert parse_options("shop", "none", {}).fair_key({"x-tenant": "acme"}, {}) == ""
    for bad in ({"priority": 101}, {"queue": ""}, {"fairness": "tenant"}, {"fairness": {"cookie": "x"}}):
        with pytest.raises(Exception, match=r"priority|queue|fairness"):
            parse_options("shop", "none", bad)


async def test_a_webhook_job_carries_its_source_s_queue_priority_and_fair_key(client: Any, load: Any) -> None:
    await sync_to_async(load)(
        {"sources": [{"slug": "tenants", "scheme": "none",
                      "config": {"queue": "billing", "priority": 3, "fairness": {"path": "tenant"}}}]}
    )  # fmt: skip
    for tenant in ("a", "a", "b"):
        answer = await client.post("/hooks/tenants/", content=json.dumps({"tenant": tenant, "type": "x"}),
                                   headers={"content-type": "application/json"})  # fmt: skip
        assert answer.status_code == 202, answer.text
    jobs = await sync_to_async(lambda: list(OutboxJob.objects.order_by("id")))()
    assert [(j.queue, j.priority, j.fair_key) for j in jobs] == [
        ("billing", 3, "tenants:a"), ("billing", 3, "tenants:a"), ("billing", 3, "tenants:b")
    ]  # fmt: skip
    a1, a2, b = jobs
    assert a1.claim_rank == a1.available_at - timedelta(seconds=3)  # priority 3 x aging 1 s
    assert a2.claim_rank - a1.claim_rank >= timedelta(seconds=0.01)  # a's second job pays a quantum
    assert b.claim_rank == b.available_at - timedelta(seconds=3)  # b has no backlog to pay for


# -- the claim's plans ----------------------------------------------------------------------------


async def plan(query: Any, params: dict[str, Any], *, generic: bool = False) -> str:
    pool = await db.get_pool()
    async with pool.connection() as conn, conn.transaction():
        if generic:  # the plan a prepared statement settles on, which does not know the values
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cur = await conn.execute(b"EXPLAIN (FORMAT JSON) " + query.encode(), params)
        fetched = await cur.fetchone()
        assert fetched is not None
        return json.dumps(fetched[0])


@pytest.fixture
async def realistic_table() -> None:
    """History (completed jobs) and a claimable queue over three queues, priorities and fair keys,
    analysed: enough rows that the planner's choice means something (default planner settings)."""
    await insert(15_000)
    await sql("UPDATE automate_outbox_job SET status = 'completed', completed_at = now()")
    await insert(3000, queue="billing", priority=5)
    await insert(3000, fair_key="tenant-a")
    await insert(2000, queue="other", fair_key="tenant-b", priority=-3)
    await insert(500, offset=3600)  # not yet available
    await sql("VACUUM ANALYZE automate_outbox_job")


@pytest.mark.usefixtures("realistic_table")
@pytest.mark.parametrize(
    ("query", "params", "index"),
    [
        (queries.CLAIM_BATCH, {}, "automate_outbox_claimable"),
        (queries.CLAIM_BATCH_QUEUE, {"queue": "billing"}, "automate_outbox_by_queue"),
        (queries.CLAIM_BATCH_QUEUES, {"queues": ["billing"]}, "automate_outbox_by_queue"),
        (queries.CLAIM_BATCH_QUEUES, {"queues": ["billing", "default", "other"]}, "automate_outbox_by_queue"),
    ],
    ids=["all-queues", "one-queue", "one-queue-as-a-list", "three-queues"],
)
async def test_every_claim_shape_is_one_index_range_without_a_sort(
    query: str, params: Any, index: str
) -> None:
    found = json.loads(await plan(query, {"limit": 50, "owner": "x", "lease": 1, **params}))
    nodes = list(_nodes(found[0]["Plan"]))
    scans = [
        n for n in nodes if n.get("Relation Name") == "automate_outbox_job_live" and "Scan" in n["Node Type"]
    ]
    allowed = (index, "automate_outbox_job_pkey")
    assert scans and all(n["Node Type"] == "Index Scan" and n["Index Name"] in allowed for n in scans), scans
    assert any(n.get("Index Name") == index for n in scans)
    # the only sort is the few candidates' (one queue's or several queues' first rows), never the table's
    assert all(n["Node Type"] != "Sort" or n.get("Plan Rows", 0) <= 50 * 3 for n in nodes)


async def test_a_queue_filter_reads_the_queue_index_even_when_its_queue_is_empty() -> None:
    """Every claimable row on one queue, the worker names it and another, empty one: a generic
    plan must not walk the all-queues index through the whole backlog looking for the empty one."""
    await insert(20_000)
    await sql("VACUUM ANALYZE automate_outbox_job")
    shapes: list[tuple[str, dict[str, Any]]] = [
        (queries.CLAIM_BATCH_QUEUES, {"queues": ["default", "other"]}),
        (queries.CLAIM_BATCH_QUEUE, {"queue": "other"}),
    ]
    for query, params in shapes:
        found = await plan(query, {"limit": 50, "owner": "x", "lease": 1, **params}, generic=True)
        assert "automate_outbox_by_queue" in found and "automate_outbox_claimable" not in found, found


@pytest.mark.usefixtures("realistic_table")
async def test_the_fairness_lookup_of_the_rank_trigger_reads_its_index() -> None:
    lookup = """SELECT j.claim_rank FROM automate_outbox_job AS j
        WHERE j.status IN ('ready', 'retry') AND j.queue = 'default' AND j.fair_key = 'tenant-a'
          AND j.priority = 0 AND j.available_at <= now()
        ORDER BY j.claim_rank DESC LIMIT 1"""
    assert "automate_outbox_fair" in await plan(lookup, {})


@pytest.mark.usefixtures("realistic_table")
async def test_the_claimed_jobs_events_are_read_from_their_own_day_partitions_only() -> None:
    """The claim touches no event partition; the claimed jobs' events are then read by id, and the
    planner reads only the day partitions those ids name, however many days there are (and
    whatever their statistics say), by primary key."""
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    base = history_ids.bound(tomorrow)
    await sql(
        """
        WITH e AS (
            INSERT INTO automate_event (id, source, event_type, payload, headers, trace_id, received_at)
            SELECT %(base)s + g, 'load', 'order.created', jsonb_build_object('g', g), '{}', md5(g::text),
                   now()
            FROM generate_series(1, 10) AS g RETURNING id
        )
        INSERT INTO automate_outbox_job
            (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
             queue, priority, fair_key, created_at, updated_at)
        SELECT id, 'event', 'ready', 0, 5, now(), '', '', 'default', 10, '', now(), now() FROM e
        """,
        {"base": base},
    )
    claim = json.loads(await plan(queries.CLAIM_BATCH, {"limit": 50, "owner": "x", "lease": 30}))
    assert not [n for n in _nodes(claim[0]["Plan"]) if "automate_event" in str(n.get("Relation Name", ""))]

    jobs = await store.claim_batch(50, "x", 30)  # the ten of tomorrow (priority 10) among them
    assert len(jobs) == 50 and all(j.event is not None for j in jobs)
    tomorrows = sorted((j.event.id, j.event.payload) for j in jobs if j.event and j.event.id > base)
    assert tomorrows == [(base + g, {"g": g}) for g in range(1, 11)]
    ids = sorted(j.event.id for j in jobs if j.event)
    found = json.loads(await plan(queries.CLAIMED_EVENTS, {"ids": ids}))
    read = {n["Relation Name"] for n in _nodes(found[0]["Plan"]) if "Relation Name" in n}
    assert read == {f"automate_event_p{today:%Y%m%d}", f"automate_event_p{tomorrow:%Y%m%d}"}
    scans = {n["Relation Name"]: n["Node Type"] for n in _nodes(found[0]["Plan"]) if "Relation Name" in n}
    assert scans[f"automate_event_p{today:%Y%m%d}"] != "Seq Scan", scans  # by primary key, not 23,500 rows


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
