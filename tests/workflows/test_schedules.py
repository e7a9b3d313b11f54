"""Cron schedules emit events through the outbox: once per tick across workers, missed ticks once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from automate_core.definitions import DefinitionError
from automate_core.models import Event, OutboxJob, Schedule
from automate_core.schedules import service
from tests.workflows.conftest import aload

pytestmark = pytest.mark.usefixtures("live_db")


def test_due_tick_fires_the_latest_missed_tick_once() -> None:
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    now = start + timedelta(minutes=47, seconds=30)
    tick = service.due_tick("*/5 * * * *", "UTC", start, now)
    assert tick.scheduled_for == datetime(2026, 1, 1, 10, 45, tzinfo=UTC)
    assert tick.missed == 9  # 10:00 … 10:40 were missed; 10:45 fires
    assert tick.next_fire_at == datetime(2026, 1, 1, 10, 50, tzinfo=UTC)


def test_time_zones_are_honoured() -> None:
    after = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)  # 07:00 in Paris (summer time)
    nxt = service.next_tick("0 9 * * *", "Europe/Paris", after)
    assert nxt.astimezone(UTC) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


def set_next_fire(name: str, ago: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE automate_schedule SET next_fire_at = now() - interval '{ago}' WHERE name = %s", [name]
        )


def at_this_hour(name: str) -> None:
    """next_fire_at = the tick of '0 * * * *' that just passed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE automate_schedule SET next_fire_at = date_trunc('hour', now()) WHERE name = %s", [name]
        )


async def test_a_due_schedule_fires_once_across_many_workers() -> None:
    await aload(schedules=[{"name": "tick", "cron": "* * * * *", "event_type": "tick", "payload": {"k": 1}}])
    assert await service.fire_due() == []  # first look: computes the next tick, fires nothing
    schedule = await Schedule.objects.aget(name="tick")
    assert schedule.next_fire_at is not None and schedule.next_fire_at > datetime.now(UTC)
    await sync_to_async(set_next_fire)("tick", "2 hours 30 seconds")  # every worker was down
    fired = await asyncio.gather(*(service.fire_due() for _ in range(6)))  # six workers at once
    assert sum(len(f) for f in fired) == 1
    event = await Event.objects.aget()
    assert (event.source, event.event_type) == ("schedule", "tick")
    assert event.payload["k"] == 1 and 119 <= event.payload["schedule"]["missed"] <= 121
    assert event.idempotency_key == f"schedule:tick:{event.payload['schedule']['scheduled_for']}"
    assert await OutboxJob.objects.filter(event=event).aexists()  # same guarantees as a webhook
    schedule = await Schedule.objects.aget(name="tick")
    assert schedule.last_event_id == event.pk
    assert schedule.next_fire_at is not None and schedule.next_fire_at > datetime.now(UTC)
    assert await service.fire_due() == []  # nothing due until the next minute


async def test_the_same_tick_is_not_emitted_twice_even_if_the_row_is_reset() -> None:
    await aload(schedules=[{"name": "tick", "cron": "0 * * * *", "event_type": "tick"}])
    await sync_to_async(at_this_hour)("tick")
    assert len(await service.fire_due()) == 1
    await sync_to_async(at_this_hour)("tick")  # e.g. a restored backup
    assert await service.fire_due() == []  # the idempotency key refuses the duplicate
    assert await Event.objects.acount() == 1


async def test_the_service_runs_until_stopped() -> None:
    await aload(schedules=[{"name": "tick", "cron": "* * * * *", "event_type": "tick"}])
    await service.fire_due()
    await sync_to_async(set_next_fire)("tick", "1 second")
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop, interval=0.05))
    for _ in range(100):
        if await Event.objects.aexists():
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await Event.objects.acount() == 1


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "x", "cron": "every minute"}, "not a cron expression"),
        ({"name": "x", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"name": "x", "cron": "* * * * *", "every": 1}, "unknown keys"),
    ],
)
async def test_bad_schedules_are_refused_with_their_place(item: dict[str, str], message: str) -> None:
    with pytest.raises(DefinitionError, match=rf"schedules\[0\].*{message}"):
        await aload(schedules=[item])
