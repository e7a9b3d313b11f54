"""Test mode: run a workflow, or up to one of its steps, against a stored event, in dry run.

Nothing leaves the machine: connectors that declare ``supports_dry_run`` are called with
``context["dry_run"] = True`` (they validate and describe what they would send, and send
nothing); the others are not called at all. ``secret("NAME")`` renders as ``<secret NAME>``
without asking a secrets backend. Nothing is written to the database; the result shows each
step's rendered input and its output (what would be sent) or error.

With a past run, the steps before the one under test reuse that run's recorded outputs, so a
step is tested with exactly the input it had then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from automate_core.exceptions import WorkflowError
from automate_core.execution.journal import MemoryJournal, MemoryRun
from automate_core.execution.runner import Plan, WorkflowRunner
from automate_core.models import Event, ExecutionRun, StepRun, Workflow
from automate_core.outbox.store import ClaimedEvent
from automate_core.rules.engine import WorkflowSpec, spec_from_definition


@dataclass(frozen=True, slots=True)
class Subject:
    spec: WorkflowSpec
    event: ClaimedEvent
    reuse: dict[str, tuple[str, Any]]


def _claimed(event: Event, payload: Any = None) -> ClaimedEvent:
    return ClaimedEvent(
        event.pk,
        event.source,
        event.event_type,
        event.payload if payload is None else payload,
        event.headers or {},
        event.trace_id,
        event.received_at,
    )


def prepare(
    workflow_name: str,
    *,
    step: str | None = None,
    event_id: int | None = None,
    run_id: int | None = None,
    payload: Any = None,
) -> Subject:
    """Load the current version, the event (of the run, when given) and the outputs to reuse."""
    workflow = Workflow.objects.select_related("current_version").filter(name=workflow_name).first()
    if workflow is None or workflow.current_version is None:
        raise WorkflowError(f"No published workflow named {workflow_name!r}.")
    version = workflow.current_version
    spec = spec_from_definition(workflow.pk, workflow.name, version.pk, version.number, version.definition)
    names = [s.name for s in spec.steps]
    if step is not None and step not in names:
        raise WorkflowError(f"{workflow_name} has no step {step!r}; its steps: {', '.join(names)}.")
    reuse: dict[str, tuple[str, Any]] = {}
    if run_id is not None:
        run = ExecutionRun.objects.select_related("event").filter(pk=run_id).first()
        if run is None:
            raise WorkflowError(f"No run #{run_id}.")
        event = run.event
        before = names[: names.index(step)] if step else []
        for record in StepRun.objects.filter(run=run, name__in=before).order_by("position", "id"):
            if record.status in ("succeeded", "skipped", "reused"):
                reuse[record.name] = ("skipped" if record.status == "skipped" else "succeeded", record.output)
    elif event_id is not None:
        found = Event.objects.filter(pk=event_id).first()
        if found is None:
            raise WorkflowError(f"No event #{event_id}.")
        event = found
    else:
        raise WorkflowError("Name a stored event (--event ID) or a past run (--run ID) to test against.")
    return Subject(spec, _claimed(event, payload), reuse)


def _prepare_in_thread(workflow_name: str, **kwargs: Any) -> Subject:
    """``prepare`` on a thread of its own (callable from sync code that is itself in an executor)."""
    from django.db import connections

    try:
        return prepare(workflow_name, **kwargs)
    finally:
        connections.close_all()


async def dry_run(
    workflow_name: str,
    *,
    step: str | None = None,
    event_id: int | None = None,
    run_id: int | None = None,
    payload: Any = None,
) -> MemoryRun:
    """Run in test mode; returns the in-memory run with each step's record."""
    subject = await sync_to_async(_prepare_in_thread, thread_sensitive=False)(
        workflow_name, step=step, event_id=event_id, run_id=run_id, payload=payload
    )
    journal = MemoryJournal()
    runner = WorkflowRunner(journal, dry_run=True)
    outcome = await runner.run(Plan(subject.spec, reuse=subject.reuse), subject.event, None, until=step)
    return journal.runs[outcome.run_id]
