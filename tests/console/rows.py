"""Rows written as the platform writes them, at chosen times, for the console tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from automate_core.models import Event, EventKey, ExecutionRun, OutboxJob, StepRun, Workflow


def event(
    source: str = "shop", event_type: str = "order.created", *, ago: timedelta | None = None, **extra: Any
) -> Event:
    values: dict[str, Any] = {"payload": {"id": 1}, "trace_id": extra.pop("trace_id", "t" * 32)}
    values.update(extra)
    e = Event.objects.create(source=source, event_type=event_type, **values)
    if e.idempotency_key is not None:  # held, as the ingest holds it (automate_event_key)
        EventKey.objects.create(
            source=source, idempotency_key=e.idempotency_key, event_id=e.pk, trace_id=e.trace_id
        )
    if ago is not None:
        Event.objects.filter(pk=e.pk).update(received_at=timezone.now() - ago)
        e.refresh_from_db()
    return e


def run(
    workflow: Workflow | None,
    status: str = "succeeded",
    *,
    ago: timedelta | None = None,
    on: Event | None = None,
    steps: int = 0,
) -> ExecutionRun:
    started = timezone.now() - (ago or timedelta(0))
    r = ExecutionRun.objects.create(
        workflow=workflow,
        workflow_name=workflow.name if workflow else "gone",
        version=workflow.current_version if workflow else None,
        event=on or event(ago=ago),
        status=status,
        trace_id="r" * 32,
        finished_at=started + timedelta(milliseconds=120),
    )
    ExecutionRun.objects.filter(pk=r.pk).update(started_at=started)
    r.refresh_from_db()
    for i in range(steps):
        at: datetime = started + timedelta(milliseconds=40 * i)
        StepRun.objects.create(
            run=r,
            position=i,
            name=f"s{i}",
            connector="log",
            action="info",
            status=status if i == steps - 1 else "succeeded",
            input={"message": f"step {i}"},
            output={"logged": f"step {i}"} if status == "succeeded" or i < steps - 1 else None,
            error="" if status == "succeeded" or i < steps - 1 else "ConnectorError: boom",
            started_at=at,
            finished_at=at + timedelta(milliseconds=30),
            duration_ms=30.0,
        )
    return r


def dead_job(
    on: Event, *, ago: timedelta | None = None, error: str = "step post: ConnectorError: 503"
) -> OutboxJob:
    job = OutboxJob.objects.create(event=on, status="dead", attempts=5, last_error=error)
    if ago is not None:
        OutboxJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - ago)
    return job
