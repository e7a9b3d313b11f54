"""Admission controls across two ``automate worker`` processes, one of them killed (SIGKILL)
while it holds a throttle turn or a singleton lock: the state is neither lost nor stuck."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import AdmissionState, ConcurrencySlot, Event, ExecutionRun, OutboxJob
from automate_core.plugins import registry
from tests.conftest import database_url
from tests.helpers import eventually
from tests.worker import probe
from tests.worker.test_faults import Workers

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]

FLAGS = ("--concurrency", "8", "--batch-size", "4", "--lease", "2", "--rescue-interval", "0.3")

THROTTLED = """
workflows:
  - name: throttled
    trigger: {source: shop, event_type: "order.*"}
    throttle: {limit: 4, period: 1s, key: "{{ event.payload.customer }}"}
    steps:
      - {name: work, connector: probe, action: work, params: {seconds: 0.6}}
"""

SINGLETON = """
workflows:
  - name: single
    trigger: {source: shop, event_type: "order.*"}
    singleton: {key: "{{ event.payload.customer }}", mode: queue}
    steps:
      - {name: work, connector: probe, action: work, params: {seconds: "{{ event.payload.seconds }}"}}
"""


@pytest.fixture(autouse=True)
def probe_connector() -> Iterator[None]:
    registry.connectors().override("probe", probe.Probe)
    yield
    registry.connectors().override("probe", None)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path, database_url())
    w.env["AUTOMATE_CONCURRENCY_SNOOZE_SECONDS"] = "0.2"
    yield w
    w.stop_all()


def load(workers: Workers, text: str) -> None:
    from automate_core import definitions

    path = workers.tmp / "wf.yaml"
    path.write_text(text)
    definitions.load_file(path)


def running_under(pid: int, **filters: object) -> bool:
    return OutboxJob.objects.filter(status="running", lease_owner__contains=f":{pid}:", **filters).exists()


async def test_throttle_spaces_the_runs_across_two_workers_and_survives_one_killed(workers: Workers) -> None:
    await sync_to_async(load)(workers, THROTTLED)
    victim, other = workers.start(*FLAGS), workers.start(*FLAGS)
    await eventually(
        lambda: all("started (concurrency" in workers.log(p) for p in (victim, other)), within=20
    )
    for customer in ["a"] * 12 + ["b"] * 3:
        await sync_to_async(emit)("shop", "order.created", {"customer": customer})
    # the victim holds a throttled turn: a delayed run job it is running
    await eventually(lambda: running_under(victim.pid, payload__has_key="run"), within=20)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    held = await sync_to_async(
        lambda: set(OutboxJob.objects.filter(status="running", lease_owner__contains=f":{victim.pid}:")
                    .values_list("id", flat=True))
    )()  # fmt: skip
    assert held
    await eventually(
        lambda: OutboxJob.objects.exclude(status="completed").count() == 0,
        within=30,
        message="runs were lost",
    )
    assert workers.stop(other) == 0
    # every event ran to success exactly once (a killed run was resumed by its job's next claim)
    succeeded = await sync_to_async(
        lambda: sorted(ExecutionRun.objects.filter(status="succeeded").values_list("event_id", flat=True))
    )()
    assert succeeded == sorted(
        await sync_to_async(lambda: list(Event.objects.values_list("id", flat=True)))()
    )
    # the turns held by the killed worker were not lost: their jobs ran again, after it died
    rescued = await sync_to_async(lambda: list(OutboxJob.objects.filter(id__in=held)))()
    assert all(j.attempts >= 2 for j in rescued)
    events = {j.event_id for j in rescued if j.event_id is not None}
    again = [c for e in events for c in workers.calls()[e] if c["attempt"] >= 2]
    assert again and all(c["at"] > killed_at and c["pid"] == other.pid for c in again)
    # one turn per event: the 12 runs of key 'a' got 12 turns, one interval (period / limit) apart
    state = await AdmissionState.objects.aget(kind="throttle", key="a")
    assert state.count == 12
    jobs = await sync_to_async(
        lambda: list(OutboxJob.objects.filter(payload__has_key="run", event__payload__customer="a"))
    )()
    inline = await ExecutionRun.objects.filter(
        event__payload__customer="a", job__payload__isnull=True, status="succeeded"
    ).acount()
    assert len(jobs) + inline == 12 and inline >= 1  # the first ran inline, at once
    # a job's available_at is its turn, unless its claim was killed (a rescue moves it later)
    turns = sorted(j.available_at for j in jobs if j.id not in held)
    gaps = [(b - a) / timedelta(seconds=0.25) for a, b in pairwise(turns)]
    assert all(round(g) >= 1 and abs(g - round(g)) < 0.02 for g in gaps), gaps
    # and no run began before its turn
    early = await sync_to_async(
        lambda: [r for r in ExecutionRun.objects.filter(job__payload__has_key="run").select_related("job")
                 if r.job is not None and r.job_id not in held and r.started_at < r.job.available_at]
    )()  # fmt: skip
    assert early == []


async def test_a_singleton_lock_held_by_a_killed_worker_frees_itself(workers: Workers) -> None:
    await sync_to_async(load)(workers, SINGLETON)
    first = (await sync_to_async(emit)("shop", "order.created", {"customer": "a", "seconds": 30})).event_id
    victim = workers.start(*FLAGS)
    await eventually(lambda: any(c["phase"] == "start" for c in workers.calls().get(first, [])), within=20)
    later = [
        (await sync_to_async(emit)("shop", "order.created", {"customer": "a", "seconds": 0.2})).event_id
        for _ in range(3)
    ]
    other = workers.start(*FLAGS)
    # the other worker finds the key held: the newer events wait their turn (snoozed, unspent)
    await eventually(
        lambda: OutboxJob.objects.filter(event_id__in=later, releases__gte=1).count() == 3, within=20
    )
    assert not any(workers.calls().get(e) for e in later)
    lock = await ConcurrencySlot.objects.aget(slot=-1)
    assert await OutboxJob.objects.filter(pk=lock.job_id, event_id=first).aexists()
    # the holder is killed; its retry must not hold the key for 30 s again
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    await Event.objects.filter(pk=first).aupdate(payload={"customer": "a", "seconds": 0.2})
    await eventually(
        lambda: OutboxJob.objects.exclude(status="completed").count() == 0,
        within=30,
        message="the lock is stuck",
    )
    assert workers.stop(other) == 0
    calls = workers.calls()
    # one at a time: after the kill, the runs of key 'a' never overlapped
    spans = sorted(
        (s["at"], e["at"])
        for event_id in [first, *later]
        for s, e in zip(
            [c for c in calls[event_id] if c["phase"] == "start" and c["pid"] == other.pid],
            [c for c in calls[event_id] if c["phase"] == "end" and c["pid"] == other.pid],
            strict=True,
        )
    )
    assert len(spans) == 4 and all(start > killed_at for start, _ in spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans))
    assert await ConcurrencySlot.objects.acount() == 0
    statuses = await sync_to_async(
        lambda: sorted(ExecutionRun.objects.filter(status="succeeded").values_list("event_id", flat=True))
    )()
    assert statuses == sorted([first, *later])


LIMITED_AND_CANCELLING = """
workflows:
  - name: limited
    trigger: {source: shop, event_type: "order.*"}
    rate_limit: {limit: 10, period: 1h, key: "{{ event.payload.customer }}"}
    steps:
      - {name: work, connector: probe, action: work, params: {seconds: 0.05}}
  - name: newest
    trigger: {source: shop, event_type: "profile.*"}
    singleton: {key: "{{ event.payload.customer }}", mode: cancel}
    steps:
      - {name: first, connector: probe, action: work, params: {seconds: "{{ event.payload.seconds }}"}}
      - {name: second, connector: probe, action: work, params: {seconds: 0}}
"""


async def test_a_rate_limit_and_a_cancelling_singleton_hold_across_two_workers(workers: Workers) -> None:
    await sync_to_async(load)(workers, LIMITED_AND_CANCELLING)
    procs = [workers.start(*FLAGS, "--batch-size", "1") for _ in range(2)]
    await eventually(lambda: all("started (concurrency" in workers.log(p) for p in procs), within=20)
    profile = {"customer": "a", "seconds": 1.5}
    older = (await sync_to_async(emit)("shop", "profile.updated", profile)).event_id
    for customer in ["a"] * 25 + ["b"] * 5:
        await sync_to_async(emit)("shop", "order.created", {"customer": customer})
    await eventually(lambda: any(c["phase"] == "start" for c in workers.calls().get(older, [])), within=20)
    newer = (await sync_to_async(emit)("shop", "profile.updated", {"customer": "a", "seconds": 0})).event_id
    await eventually(lambda: OutboxJob.objects.exclude(status="completed").count() == 0, within=30)
    assert [workers.stop(p) for p in procs] == [0, 0]
    # the rate limit: 10 runs of key 'a' in the hour, the 15 others skipped with the reason
    limited = ExecutionRun.objects.filter(workflow_name="limited")
    counts = await sync_to_async(
        lambda: sorted(set(limited.values_list("event__payload__customer", "status")))
    )()
    assert counts == [("a", "skipped"), ("a", "succeeded"), ("b", "succeeded")]
    assert await limited.filter(status="succeeded", event__payload__customer="a").acount() == 10
    skipped = await sync_to_async(lambda: list(limited.filter(status="skipped")))()
    assert len(skipped) == 15
    assert all(
        r.error.startswith("rate limit 10 per 1h for key 'a' reached; next run allowed at ") for r in skipped
    )
    assert len({c["pid"] for calls in workers.calls().values() for c in calls}) == 2  # both workers ran some
    # the singleton: the newer event cancelled the older run, which stopped after its current step
    run = await ExecutionRun.objects.aget(event_id=older)
    reason = f"cancelled by a newer event #{newer} (singleton key 'a', mode cancel)"
    assert (run.status, run.error) == ("cancelled", reason)
    assert await ExecutionRun.objects.filter(event_id=newer, status="succeeded").aexists()
    calls = workers.calls()
    assert [c["phase"] for c in calls[older]] == ["start", "end"]  # its first step ended; no second step
    assert [c["phase"] for c in calls[newer]] == ["start", "end", "start", "end"]
    assert calls[newer][0]["at"] >= calls[older][1]["at"]  # the newer run began once the older one stopped
    assert await ConcurrencySlot.objects.acount() == 0
