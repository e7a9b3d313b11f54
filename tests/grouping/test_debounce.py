"""Debounce: one run per window and key, on the window's last event, across two workers."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from automate_core.execution import grouping, replay
from automate_core.execution.engine import ExecutionEngine
from automate_core.ingest.ingestor import emit
from automate_core.models import EventGroup, ExecutionRun, GroupMember, OutboxJob
from automate_core.worker.pool import WorkerPool
from tests.grouping.conftest import LAST, agroups, amembers, make_due, settled
from tests.helpers import eventually
from tests.workflows.conftest import Probe, aload, drain, options, workflow

pytestmark = pytest.mark.usefixtures("live_db")

KEYED = {"period": "1h", "key": "{{ event.payload.user }}"}


async def send(n: int, **payload: object) -> list[int]:
    return [
        (await sync_to_async(emit)("shop", "order.created", {**payload, "i": i})).event_id for i in range(n)
    ]


def completed(n: int) -> bool:
    return OutboxJob.objects.filter(status="completed").count() == n


async def test_one_run_per_key_on_the_last_event_of_the_window(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce=KEYED))
    a = await send(4, user="a")
    b = await send(2, user="b")
    await drain(lambda: completed(6))  # every event job absorbed its event: nothing ran yet
    assert probe.calls == []
    assert sorted((k, s, n) for _kind, k, s, n, _r in await agroups()) == [("a", "open", 4), ("b", "open", 2)]
    assert sorted(sorted(m) for m in (await amembers()).values()) == sorted([a, b])
    await make_due()
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").count() == 2)
    lasts = sorted(int(p["last"]) for _a, p, _c in probe.calls)
    assert lasts == sorted([a[-1], b[-1]])  # each ran once, with its key's latest event
    runs = [r async for r in ExecutionRun.objects.order_by("id")]
    assert {r.mode for r in runs} == {"debounce"} and {r.event_id for r in runs} == {a[-1], b[-1]}
    assert [s for _k, _key, s, _n, _r in await agroups()] == ["flushed", "flushed"]


async def test_concurrent_events_on_two_workers_make_one_window_and_lose_none(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h"}))
    ids = await send(40)
    pools = [WorkerPool(options(concurrency=16, batch_size=8)) for _ in range(2)]
    tasks = [asyncio.create_task(p.run()) for p in pools]
    try:
        await eventually(lambda: completed(40), within=30)
        [(_kind, _key, status, size, _run_id)] = await agroups()
        assert (status, size) == ("open", 40)
        [group] = [g async for g in EventGroup.objects.all()]
        [members] = (await amembers()).values()
        assert sorted(members) == ids and group.last_event_id == ids[-1]  # the newest event
        await make_due()
        await eventually(lambda: ExecutionRun.objects.filter(status="succeeded").count() == 1, within=30)
        await eventually(lambda: completed(41), within=30)
    finally:
        for p in pools:
            p.stop()
        await asyncio.gather(*tasks)
    [call] = probe.calls
    assert int(call[1]["last"]) == group.last_event_id
    assert await ExecutionRun.objects.acount() == 1


async def test_a_short_period_flushes_by_itself(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": 0.5, "max_wait": 5}))
    ids = await send(3)
    await drain(settled, within=20)
    # every event is in exactly one window, and each window ran once, on its last event
    windows = await amembers()
    assert sorted(e for w in windows.values() for e in w) == ids
    assert sorted(int(p["last"]) for _a, p, _c in probe.calls) == sorted(max(w) for w in windows.values())


async def test_max_wait_caps_the_window_of_a_steady_stream(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h", "max_wait": "2h"}))
    first = await send(1)
    await drain(lambda: completed(1))
    await sync_to_async(_age_windows)("3h")  # the window opened three hours ago
    second = await send(1)  # its deadline is first event + max_wait: already past
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    assert [int(p["last"]) for _a, p, _c in probe.calls] == second
    assert await GroupMember.objects.acount() == 2 and first != second


def _age_windows(age: str) -> None:
    with connection.cursor() as cur:
        cur.execute("UPDATE automate_event_group SET first_at = first_at - %s::interval", [age])


async def test_a_retried_event_job_joins_its_window_once(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h"}))
    await send(1)
    from automate_core.outbox.store import OutboxStore

    store = OutboxStore()
    [job] = await store.claim_batch(1, "w", lease=30)
    engine = ExecutionEngine()
    assert (await engine.handle_event(job)).succeeded
    assert (await engine.handle_event(job)).succeeded  # the same job again (a rescued claim)
    assert [(s, n) for _k, _key, s, n, _r in await agroups()] == [("open", 1)]


async def test_a_key_that_fails_to_render_is_a_failed_run(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h", "key": "{{ event.payload.user.id }}"}))
    await send(1)
    await drain(lambda: ExecutionRun.objects.filter(status="failed").exists())
    run = await ExecutionRun.objects.aget()
    assert run.error.startswith("debounce key: ") and "user" in run.error
    assert await EventGroup.objects.acount() == 0 and probe.calls == []


async def test_a_cancelled_window_takes_no_more_events(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h"}))
    await send(2)
    await drain(lambda: completed(2))
    [(_k, _key, _s, _n, run_id)] = await agroups()
    await sync_to_async(replay.cancel)(run_id)
    later = await send(1)
    await drain(lambda: completed(4))  # the event, and the cancelled window's flush job (done at once)
    await make_due()
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists() and completed(5))
    assert [int(p["last"]) for _a, p, _c in probe.calls] == later  # only the new window ran
    assert [(s, n) for _k, _key, s, n, _r in await agroups()] == [("flushed", 2), ("flushed", 1)]


async def test_why_an_event_has_no_run_of_its_own(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h"}))
    ids = await send(3)
    await drain(lambda: completed(3))
    found = [(await sync_to_async(grouping.groups_of_event)(i))[0] for i in ids]
    assert {(f["kind"], f["status"], f["size"]) for f in found} == {("debounce", "open", 3)}
    assert sorted(f["position"] for f in found) == [0, 1, 2]  # in the order they joined
    assert {f["run_id"] for f in found} == {(await ExecutionRun.objects.aget()).pk}  # the one queued run


async def test_a_plain_workflow_never_reaches_the_groups(
    probe: type[Probe], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plain workflow asked for a group")

    monkeypatch.setattr(grouping.Grouper, "absorb", refuse)
    monkeypatch.setattr(grouping.GroupStore, "join", refuse)
    await aload(workflow("wf", LAST))
    await send(2)
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").count() == 2)


def automate(*args: str) -> str:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("automate", *args, stdout=out)
    return out.getvalue()


async def test_the_cli_says_which_run_carries_an_event(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h", "key": "{{ event.payload.user }}"}))
    ids = await send(3, user="a")
    await drain(lambda: completed(3))
    text = await sync_to_async(automate)("runs", "--event", str(ids[0]))
    run = await ExecutionRun.objects.aget()
    assert (
        "joined debounce #" in text and "of wf key 'a' (3 events, open): its run is #" + str(run.pk) in text
    )
    await make_due()
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    detail = await sync_to_async(automate)("runs", str(run.pk))
    assert "debounce" in detail and "3 events (flushed by deadline): " + ", ".join(map(str, ids)) in detail
