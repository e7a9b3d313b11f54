"""wait_for_event: correlated by an indexed value, with a timeout, a look-back, and one outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from automate_core.execution.waits import waits
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, RunWait
from tests.flow.conftest import arecords, fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def shipped(**wait: Any) -> dict[str, Any]:
    spec = {
        "source": "shop",
        "event_type": "shipment.created",
        "match": "event.payload.order == run.event.payload.order",
        **wait,
    }
    return workflow(
        "ship",
        {"name": "shipped", "wait_for_event": spec},
        step(
            "alert", condition="steps.shipped.output.timed_out", params={"late": "{{ event.payload.order }}"}
        ),
        step(
            "record",
            condition="not steps.shipped.output.timed_out",
            params={"shipment": "{{ steps.shipped.output.payload.tracking }}"},
        ),
        trigger={"source": "shop", "event_type": "order.paid"},
    )


def idle() -> bool:
    """No job is due or running (parked wake jobs are not due)."""
    due = OutboxJob.objects.filter(status__in=["ready", "retry"], available_at__lte=timezone.now())
    return not due.exists() and not OutboxJob.objects.filter(status="running").exists()


async def run_of(event_id: int) -> ExecutionRun:
    return await ExecutionRun.objects.aget(event_id=event_id)


async def test_the_matching_event_wakes_the_run_and_others_do_not(probe: type[Probe]) -> None:
    await aload(shipped(timeout="2h"))
    paid = await sync_to_async(emit)("shop", "order.paid", {"order": 7})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    await sync_to_async(emit)("shop", "shipment.created", {"order": 8, "tracking": "other"})
    await sync_to_async(emit)("shop", "parcel.created", {"order": 7, "tracking": "wrong type"})
    await sync_to_async(emit)("web", "shipment.created", {"order": 7, "tracking": "wrong source"})
    await drain(idle)  # every event job done: none of them matched
    assert (await run_of(paid.event_id)).status == "waiting"
    match = await sync_to_async(emit)("shop", "shipment.created", {"order": 7, "tracking": "TRK-1"})
    await drain(lambda: ExecutionRun.objects.filter(event_id=paid.event_id, status="succeeded").exists())
    run = await run_of(paid.event_id)
    assert await arecords(run.pk) == [
        ("shipped", "waiting"),
        ("shipped", "succeeded"),
        ("alert", "skipped"),
        ("record", "succeeded"),
    ]
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.status == "resolved" and wait.result is not None
    assert wait.result["event_id"] == match.event_id
    assert probe.calls[-1][1] == {"shipment": "TRK-1"}


async def test_no_event_before_the_timeout_continues_with_timed_out(probe: type[Probe]) -> None:
    await aload(shipped(timeout="2h"))
    paid = await sync_to_async(emit)("shop", "order.paid", {"order": 9})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    await fast_forward((await run_of(paid.event_id)).pk)
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    run = await run_of(paid.event_id)
    names = await arecords(run.pk)
    assert names[2] == ("alert", "succeeded")  # the alert ran because nothing came
    assert (await RunWait.objects.aget(run_id=run.pk)).status == "timed_out"


async def test_on_timeout_fail_fails_the_run() -> None:
    await aload(shipped(timeout="1h", on_timeout="fail"))
    paid = await sync_to_async(emit)("shop", "order.paid", {"order": 3})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    await fast_forward((await run_of(paid.event_id)).pk)
    await drain(lambda: ExecutionRun.objects.filter(status="failed").exists())
    run = await run_of(paid.event_id)
    assert "no shop/shipment.created event matched before the timeout" in run.error


async def test_an_event_that_came_first_is_found_by_the_look_back(probe: type[Probe]) -> None:
    await aload(shipped(lookback="10m"))
    await sync_to_async(emit)("shop", "shipment.created", {"order": 5, "tracking": "EARLY"})
    paid = await sync_to_async(emit)("shop", "order.paid", {"order": 5})
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    run = await run_of(paid.event_id)
    assert await arecords(run.pk) == [("shipped", "succeeded"), ("alert", "skipped"), ("record", "succeeded")]
    assert not await RunWait.objects.aexists()  # it never had to wait
    assert probe.calls[-1][1] == {"shipment": "EARLY"}


async def test_an_event_and_the_timeout_racing_give_exactly_one_outcome() -> None:
    await aload(shipped(timeout="1h"))
    outcomes = []
    for order in range(8):  # eight races: the row lock decides each, one way or the other
        paid = await sync_to_async(emit)("shop", "order.paid", {"order": 100 + order})
        parked = ExecutionRun.objects.filter(event_id=paid.event_id, status="waiting")
        await drain(parked.exists)
        run = await run_of(paid.event_id)
        await fast_forward(run.pk)
        wait = await RunWait.objects.aget(run_id=run.pk)
        timed, matched = await asyncio.gather(
            waits.time_out(wait.pk),
            waits.match_event(
                ("order",), 10**6 + order, "shop", "shipment.created", {"order": 100 + order, "tracking": "T"}
            ),
        )
        assert [bool(timed), bool(matched)].count(True) == 1
        outcomes.append((await RunWait.objects.aget(pk=wait.pk)).status)
    assert set(outcomes) <= {"timed_out", "resolved"}
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").count() == 8)
    # each run woke once: one outcome record per wait step
    for run in [r async for r in ExecutionRun.objects.all()]:
        assert [s for s in await arecords(run.pk) if s == ("shipped", "succeeded")] == [
            ("shipped", "succeeded")
        ]


async def test_matching_one_event_against_many_open_waits_is_an_index_lookup() -> None:
    """EXPLAIN of the match statement with thousands of open waits: an index scan, no seq scan."""
    from django.db import connection

    from automate_core.execution import wait_queries

    def plan() -> str:
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO automate_run_wait (run_id, step_name, kind, status, source, event_type, "
                "path, value, prompt, on_timeout, resolved_by, created_at) SELECT n, 'w', 'event', "
                "'open', 'shop', 'shipment.created', 'order', n::text, '', 'continue', '', now() "
                "FROM generate_series(1, 20000) n"
            )
            cur.execute("ANALYZE automate_run_wait")
            cur.execute(
                "EXPLAIN " + wait_queries.MATCH_EVENT,
                {
                    "paths": ["order"],
                    "event_id": 1,
                    "source": "shop",
                    "event_type": "shipment.created",
                    "payload": '{"order": 77}',
                },
            )
            return "\n".join(r[0] for r in cur.fetchall())

    text = await sync_to_async(plan)()
    assert "automate_wait_open_event" in text
    assert "Seq Scan on automate_run_wait" not in text
