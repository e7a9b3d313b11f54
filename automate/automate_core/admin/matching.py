"""Why an event ran no workflow: each workflow's trigger checked against it, as the engine does.

The engine runs the enabled workflows whose source and event-type globs match the event and
whose condition, if any, is true (``execution.engine``; a name the event lacks makes a
condition false). When an event's job completed without a run, the event's page says "no
workflow matched" and lists the workflows that came close: the source matched but not the type
(or the type but not the source), both matched but the condition was false (or failed), or all
matched but the workflow is disabled. They are checked against the workflows as they are now,
which the page says: a workflow changed since may have judged the event otherwise then.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from automate_core.exceptions import TemplateError
from automate_core.execution import templating
from automate_core.models import Event, JobStatus, Workflow

#: Workflows checked at most (the workflows table is small; this bounds a page all the same).
LIMIT = 500


@dataclass(frozen=True, slots=True)
class NearMiss:
    workflow: Workflow
    reason: str  # "type", "source", "condition", "condition error", "disabled", "matches now"
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of an event: handled (runs), waiting, or no workflow matched (and the near misses)."""

    state: str  # "ran", "unsettled" (no run yet: a job not done, or dead), "no match"
    near: list[NearMiss]
    unrelated: int  # workflows whose source and type both differ
    checked: int


def _context(event: Event) -> dict[str, object]:
    return {
        "event": {
            "id": event.pk,
            "source": event.source,
            "type": event.event_type,
            "payload": event.payload,
            "headers": event.headers,
            "trace_id": event.trace_id,
            "received_at": event.received_at.isoformat(),
        }
    }


def near_misses(event: Event) -> tuple[list[NearMiss], int, int]:
    """(near misses, workflows unrelated to the event, workflows checked)."""
    near: list[NearMiss] = []
    unrelated = 0
    workflows = list(Workflow.objects.order_by("name")[:LIMIT])
    for wf in workflows:
        source = fnmatchcase(event.source, wf.source_pattern)
        kind = fnmatchcase(event.event_type, wf.event_type_pattern)
        if not source and not kind:
            unrelated += 1
        elif not kind:
            near.append(
                NearMiss(wf, "type", f"type {event.event_type!r} does not match {wf.event_type_pattern!r}")
            )
        elif not source:
            near.append(
                NearMiss(wf, "source", f"source {event.source!r} does not match {wf.source_pattern!r}")
            )
        else:
            near.append(_judge(wf, event))
    return near, unrelated, len(workflows)


def _judge(wf: Workflow, event: Event) -> NearMiss:
    """A workflow whose globs match: its condition, then whether it is enabled."""
    if wf.condition.strip():
        try:
            holds = templating.evaluate(wf.condition, _context(event), undefined_is_false=True)
        except TemplateError as exc:
            return NearMiss(wf, "condition error", f"condition {wf.condition!r} failed: {exc}")
        if not holds:
            return NearMiss(wf, "condition", f"source and type match; condition {wf.condition!r} is false")
    if not wf.enabled:
        return NearMiss(wf, "disabled", "source, type and condition match, but the workflow is disabled")
    return NearMiss(wf, "matches now", "matches the event now (created or changed since the event came)")


def verdict(event: Event) -> Verdict:
    if event.runs.exists():
        return Verdict("ran", [], 0, 0)
    statuses = set(event.jobs.values_list("status", flat=True))
    if not statuses or statuses - {JobStatus.COMPLETED}:  # no job, or one not done yet (or dead)
        return Verdict("unsettled", [], 0, 0)
    near, unrelated, checked = near_misses(event)
    return Verdict("no match", near, unrelated, checked)
