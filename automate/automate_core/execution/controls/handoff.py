"""``queue:``, ``priority:`` and ``fairness: {key: ...}``: a workflow's runs go to a run job on
that queue, with that priority and fair key, instead of running inside the event's job.

The event's job matches the workflow as usual; when the workflow names a queue other than the
job's, or sets a priority or a fairness key, the run is queued (``automate_run`` status
``queued``) with its run job (``payload = {"run": id}``) in one statement, and the event's job is
done with it. The workers of that queue claim the run job under the claim's order (priority,
fairness); it carries the run out as any queued run (``ExecutionEngine._plan_queued``). A
throttled run that must wait is handed off the same way, available at its turn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from automate_core.execution.controls import queries
from automate_core.execution.controls.keys import render_key
from automate_core.execution.runner import Plan
from automate_core.outbox.store import ClaimedJob
from automate_core.rules.admission import Admission

DEFAULT_QUEUE = "default"


def job_queue(job: ClaimedJob) -> str:
    return job.queue or DEFAULT_QUEUE


def needed(admission: Admission, job: ClaimedJob) -> bool:
    """Whether the run leaves the event's job: another queue, a priority or a fairness key."""
    if admission.priority is not None or admission.fair_key is not None:
        return True
    return admission.queue is not None and admission.queue != job_queue(job)


def target(admission: Admission, context: dict[str, Any], job: ClaimedJob) -> tuple[str, int, str]:
    """(queue, priority, fair_key) of the run job; TemplateError when the fair key fails to render."""
    queue = admission.queue or job_queue(job)
    fair_key = render_key(admission.fair_key, context) if admission.fair_key else ""
    return queue, admission.priority or 0, fair_key


def queued_job_columns(definition: dict[str, Any]) -> dict[str, Any]:
    """The run job of a manual trigger or a replay (``replay.queue_run``): on the workflow's queue
    with its priority. (Its fair key stays empty: fairness shares the workers among event runs.)"""
    columns: dict[str, Any] = {}
    if definition.get("queue") is not None:
        columns["queue"] = definition["queue"]
    if definition.get("priority") is not None:
        columns["priority"] = definition["priority"]
    return columns


async def hand_off(
    conn: Any,
    plan: Plan,
    context: dict[str, Any],
    job: ClaimedJob,
    where: tuple[str, int, str],
    available_at: datetime | None,
    note: str = "",
) -> int:
    """Queue the plan's run and its run job (inside the caller's transaction); the run's id."""
    workflow, event = plan.workflow, context["event"]
    queue, priority, fair_key = where
    cur = await conn.execute(
        queries.HAND_OFF,
        {
            "workflow_id": workflow.id,
            "workflow_name": workflow.name,
            "version_id": workflow.version_id,
            "event_id": event["id"],
            "trace_id": event["trace_id"],
            "note": note,
            "max_attempts": workflow.max_attempts,
            "available_at": available_at,
            "queue": queue,
            "priority": priority,
            "fair_key": fair_key,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
