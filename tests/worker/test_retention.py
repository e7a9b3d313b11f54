"""Retention: completed and dead jobs and old events are pruned by the policy, in small batches,
and nothing that is pending, recent or still referenced by a recent run goes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from automate_core import db
from automate_core.ingest.ingestor import emit
from automate_core.models import Event, ExecutionRun, OutboxJob, StepRun
from automate_core.outbox import retention
from automate_core.outbox.retention import Pruner, RetentionPolicy

pytestmark = pytest.mark.usefixtures("live_db")

DAY = 86400.0


def policy(**overrides: float | None) -> RetentionPolicy:
    values: dict[str, float | None] = {"completed_jobs": DAY, "dead_jobs": 30 * DAY, "events": 30 * DAY}
    values.update(overrides)
    return RetentionPolicy(batch_size=2, **values)  # tiny batches: every pass takes several statements


def job(
    status: str,
    age_days: float = 0,
    *,
    event_age_days: float | None = None,
    run_age_days: float | None = None,
) -> OutboxJob:
    """An event and its job in ``status``, settled ``age_days`` ago; optionally a run of it."""
    now = timezone.now()
    result = emit("shop", "order.created", {})
    settled = now - timedelta(days=age_days)
    OutboxJob.objects.filter(event_id=result.event_id).update(
        status=status,
        updated_at=settled,
        created_at=settled,
        completed_at=settled if status == "completed" else None,
    )
    Event.objects.filter(pk=result.event_id).update(
        received_at=now - timedelta(days=age_days if event_age_days is None else event_age_days)
    )
    found = OutboxJob.objects.get(event_id=result.event_id)
    if run_age_days is not None:
        run = ExecutionRun.objects.create(
            workflow_name="wf",
            event_id=result.event_id,
            job=found,
            status="succeeded",
            trace_id="t",
            started_at=now - timedelta(days=run_age_days),
        )
        StepRun.objects.create(
            run=run, position=1, name="s", connector="log", action="log", status="succeeded",
            started_at=run.started_at, finished_at=run.started_at, duration_ms=1.0,
        )  # fmt: skip
    return found


def ids(model: type[OutboxJob] | type[Event]) -> set[int]:
    return set(model.objects.values_list("id", flat=True))


async def test_completed_and_old_dead_jobs_are_pruned_pending_and_recent_ones_kept() -> None:
    def setup() -> dict[str, OutboxJob]:
        # oldest first, as ids and creation times go in life (a pass stops at the first young row)
        return {
            "old_ready": job("ready", 90),
            "old_retry": job("retry", 90),
            "old_running": job("running", 90),
            "old_dead": job("dead", 40),
            "new_dead": job("dead", 10),
            "old_completed_2": job("completed", 3),
            "old_completed": job("completed", 2, run_age_days=2, event_age_days=0),
            "new_completed": job("completed", 0.5),
        }

    jobs = await sync_to_async(setup)()
    report = await Pruner(policy(events=None)).run_pass()
    assert report.jobs == 3
    left = await sync_to_async(ids)(OutboxJob)
    gone = {"old_completed", "old_completed_2", "old_dead"}
    assert left == {j.pk for name, j in jobs.items() if name not in gone}
    run = await ExecutionRun.objects.aget()  # the run stays, without the link to the pruned job
    assert run.job_id is None and run.event_id == jobs["old_completed"].event_id


async def test_a_policy_of_none_keeps_everything() -> None:
    await sync_to_async(job)("completed", 400)
    await sync_to_async(job)("dead", 400)
    report = await Pruner(policy(completed_jobs=None, dead_jobs=None, events=None)).run_pass()
    assert (report.jobs, report.dropped) == (0, ())
    assert await OutboxJob.objects.acount() == 2


async def test_flushed_groups_and_spent_throttle_state_go_open_ones_and_live_state_stay() -> None:
    from automate_core.models import AdmissionState, EventGroup, GroupMember, Workflow

    def setup() -> dict[str, int]:
        now = timezone.now()
        flow = Workflow.objects.create(name="grouped")
        made = {}
        # oldest first, as ids and creation times go in life
        for name, status, age in (("old_flushed", "flushed", 40), ("old_open", "open", 40),
                                  ("recent_flushed", "flushed", 5), ("young_open", "open", 1)):  # fmt: skip
            at = now - timedelta(days=age)
            group = EventGroup.objects.create(
                kind="batch", workflow_id=flow.pk, key=name, status=status, run_id=1, job_id=1,
                size=2, first_event_id=1, last_event_id=2, first_at=at, last_at=at, deadline=at,
                flushed_at=at if status == "flushed" else None,
            )  # fmt: skip
            for position in (0, 1):
                GroupMember.objects.create(
                    group_id=group.pk,
                    workflow_id=flow.pk,
                    event_id=group.pk * 10 + position,
                    position=position,
                )
            made[name] = group.pk
        for key, at in (("spent", now - timedelta(hours=2)), ("owed", now + timedelta(minutes=5))):
            AdmissionState.objects.create(workflow=flow, kind="throttle", key=key, at=at)
        AdmissionState.objects.create(
            workflow=flow, kind="rate_limit", key="window", at=now - timedelta(days=2)
        )
        return made

    made = await sync_to_async(setup)()
    await Pruner(policy(completed_jobs=None)).run_pass()
    left = {g async for g in EventGroup.objects.values_list("pk", flat=True)}
    assert left == {made["old_open"], made["recent_flushed"], made["young_open"]}
    members = {g async for g in GroupMember.objects.values_list("group_id", flat=True)}
    assert members == left
    state = {(s.kind, s.key) async for s in AdmissionState.objects.all()}
    assert state == {("throttle", "owed"), ("rate_limit", "window")}  # a window's count is kept


async def test_only_one_worker_prunes_at_a_time() -> None:
    await sync_to_async(job)("completed", 2)
    pool = await db.get_pool()
    async with pool.connection() as other:
        await other.execute("SELECT pg_advisory_lock(%s)", [retention.LOCK_KEY])
        report = await Pruner(policy()).run_pass()
        assert report.skipped and report.jobs == 0
        await other.execute("SELECT pg_advisory_unlock(%s)", [retention.LOCK_KEY])
    assert (await Pruner(policy()).run_pass()).jobs == 1


async def test_the_settings_define_the_policy() -> None:
    from django.test import override_settings

    with override_settings(AUTOMATE_RETENTION_COMPLETED_JOBS=60, AUTOMATE_RETENTION_EVENTS=None):
        current = RetentionPolicy.from_settings()
    assert (current.completed_jobs, current.events, current.dead_jobs) == (60.0, None, 30 * DAY)
