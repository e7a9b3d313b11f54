"""Manual runs, replays, cancellation and bulk replay: new runs queued through the outbox.

Every one of these creates a **queued run** and an outbox job that carries it out
(``payload = {"run": id}``), so it gets the same guarantees as an event (retries, leases,
concurrency limits). The run is linked to the run it came from (``parent``) with its ``mode``;
the original run and its event are never changed. Modes:

* ``original``: the same event on the version the original ran;
* ``current``: the same event on the workflow's current version;
* ``resume``: current version, reusing the recorded outputs of the steps that succeeded before
  the original failed, so that their side effects are not repeated;
* ``edited``: a new event with an edited payload (the original event stays as received);
* ``manual``: a new event with a given payload, on the current version.

Bulk replay selects runs by a filter (never an empty one), counts them for a preview, and leaves
the work to the workers: a job queues the replays chunk by chunk (``advance_bulk``). It replays
each event at most once per workflow, and not at all once it is fixed: by default it considers only
the latest run of a workflow for an event, skipping a matching run when a later run of the same
workflow on the same event exists (*fixed* when that later run succeeded, *superseded* otherwise:
replaying both would repeat the side effects). The preview says how many it skips and why;
``include_fixed`` replays every matching run regardless.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from automate_core.exceptions import WorkflowError
from automate_core.execution.controls import handoff
from automate_core.ingest.ingestor import new_trace_id
from automate_core.models import (
    BulkReplay,
    Event,
    ExecutionRun,
    OutboxJob,
    RunMode,
    RunStatus,
    Workflow,
    WorkflowVersion,
)

REPLAY_MODES = (RunMode.ORIGINAL, RunMode.CURRENT, RunMode.RESUME, RunMode.EDITED)
BULK_MODES = (RunMode.ORIGINAL, RunMode.CURRENT, RunMode.RESUME)
FILTER_KEYS = ("workflow", "status", "source", "event_type", "error", "since", "until")
#: Stored with a bulk replay's filter, but not a filter: replay runs whose event was fixed too.
INCLUDE_FIXED = "include_fixed"
CHUNK = 200


def queue_run(
    *,
    workflow: Workflow,
    version: WorkflowVersion,
    event: Event,
    mode: str,
    parent: ExecutionRun | None = None,
    bulk: BulkReplay | None = None,
) -> ExecutionRun:
    """A queued run of ``version`` on ``event``, and the outbox job that will carry it out."""
    with transaction.atomic():
        run = ExecutionRun.objects.create(
            workflow=workflow,
            workflow_name=workflow.name,
            version=version,
            event=event,
            attempt=0,
            status=RunStatus.QUEUED,
            trace_id=event.trace_id,
            mode=mode,
            parent=parent,
            bulk_replay=bulk,
        )
        job = OutboxJob.objects.create(
            event=event,
            kind=OutboxJob.Kind.EVENT,
            payload={"run": run.pk},
            max_attempts=version.definition["retry"]["max_attempts"],
            **handoff.queued_job_columns(version.definition),  # the workflow's queue and priority
        )
        ExecutionRun.objects.filter(pk=run.pk).update(job=job)
        run.job = job
    return run


def _current(workflow: Workflow | None, what: str) -> tuple[Workflow, WorkflowVersion]:
    if workflow is None:
        raise WorkflowError(f"{what}: its workflow was deleted.")
    if workflow.current_version is None:
        raise WorkflowError(f"{what}: workflow {workflow.name} has no published version yet.")
    return workflow, workflow.current_version


def trigger(name: str, payload: Any, *, source: str = "manual", event_type: str = "manual") -> ExecutionRun:
    """Run workflow ``name`` on ``payload`` (a new event), whatever its trigger says."""
    workflow = Workflow.objects.select_related("current_version").filter(name=name).first()
    if workflow is None:
        known = ", ".join(Workflow.objects.values_list("name", flat=True)[:20])
        raise WorkflowError(f"No workflow named {name!r}. Known: {known or 'none'}.")
    workflow, version = _current(workflow, f"workflow {name}")
    with transaction.atomic():
        event = Event.objects.create(
            source=source, event_type=event_type, payload=payload, headers={}, trace_id=new_trace_id()
        )
        return queue_run(workflow=workflow, version=version, event=event, mode=RunMode.MANUAL)


def replay(run_id: int, mode: str, *, payload: Any = None, bulk: BulkReplay | None = None) -> ExecutionRun:
    """A new run replaying run ``run_id`` in ``mode``; the original is left as it is."""
    original = (
        ExecutionRun.objects.select_related("workflow__current_version", "version", "event")
        .filter(pk=run_id)
        .first()
    )
    if original is None:
        raise WorkflowError(f"No run #{run_id}.")
    if mode not in REPLAY_MODES:
        raise WorkflowError(f"Unknown replay mode {mode!r}; use one of: {', '.join(REPLAY_MODES)}.")
    what = f"run #{run_id}"
    if original.status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING):
        raise WorkflowError(f"{what} is still {original.status}; wait for it to end, or cancel it first.")
    if mode != RunMode.EDITED and payload is not None:
        raise WorkflowError("A payload is only given with the 'edited' mode.")
    workflow, version = _current(original.workflow, what)
    event = original.event
    if mode == RunMode.ORIGINAL:
        if original.version is None:
            raise WorkflowError(f"{what} ran before versions were kept; replay it on the current version.")
        version = original.version
    elif mode == RunMode.RESUME and original.status != RunStatus.FAILED:
        raise WorkflowError(
            f"{what} {original.status}; only a failed run can resume. Replay it from the start."
        )
    with transaction.atomic():
        if mode == RunMode.EDITED:
            if payload is None:
                raise WorkflowError("The 'edited' mode needs the edited payload.")
            event = Event.objects.create(
                source=event.source,
                event_type=event.event_type,
                payload=payload,
                headers={**event.headers, "x-automate-edited-from-event": str(event.pk)},
                trace_id=new_trace_id(),
            )
        return queue_run(
            workflow=workflow, version=version, event=event, mode=mode, parent=original, bulk=bulk
        )


def cancel(run_id: int) -> str:
    """Cancel a queued, running or waiting run. A running one stops before its next step; a
    waiting one's waits close (its wake job finds it cancelled and does nothing)."""
    from automate_core.execution.waits import cancel_waits_sync

    with transaction.atomic():
        updated = ExecutionRun.objects.filter(
            pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING]
        ).update(status=RunStatus.CANCELLED, error="cancelled", finished_at=timezone.now())
        if updated:
            cancel_waits_sync(run_id, "cancel")
    if updated:
        return RunStatus.CANCELLED
    run = ExecutionRun.objects.filter(pk=run_id).first()
    if run is None:
        raise WorkflowError(f"No run #{run_id}.")
    raise WorkflowError(
        f"Run #{run_id} already ended ({run.status}); only queued, running or waiting runs cancel."
    )


# -- bulk replay ---------------------------------------------------------------------------------


def _moment(key: str, value: Any) -> datetime:
    """An ISO date-time, or an age such as 30m, 6h, 2d."""
    text = str(value).strip()
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1:] in units:
        return timezone.now() - timedelta(**{units[text[-1]]: int(text[:-1])})
    moment = parse_datetime(text)
    if moment is None:
        raise WorkflowError(f"filter {key}: {text!r} is neither a date-time nor an age like 6h or 2d.")
    return moment if moment.tzinfo else timezone.make_aware(moment)


def later_runs() -> QuerySet[ExecutionRun]:
    """Runs of the outer run's workflow on the outer run's event, started after it."""
    return ExecutionRun.objects.filter(
        event_id=OuterRef("event_id"), workflow_id=OuterRef("workflow_id"), id__gt=OuterRef("id")
    )


def matching_runs(filters: dict[str, Any], *, include_fixed: bool | None = None) -> QuerySet[ExecutionRun]:
    """Finished runs matching ``filters``; refuses an empty filter (it would replay everything).

    Unless ``include_fixed`` (or the filter's ``include_fixed``), only the latest run of each
    workflow for an event: a run with a later one (a replay that fixed it, or replayed it again)
    is left out."""
    filters = dict(filters)
    stored = bool(filters.pop(INCLUDE_FIXED, False))
    include_fixed = stored if include_fixed is None else include_fixed
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise WorkflowError(f"Unknown filter keys {sorted(unknown)}; use: {', '.join(FILTER_KEYS)}.")
    given = {k: v for k, v in filters.items() if v not in (None, "")}
    if not given:
        raise WorkflowError(
            "An empty filter is refused: name at least a workflow, status, source, event type, error "
            "text or time range."
        )
    query = Q(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
    lookups = {
        "workflow": "workflow_name",
        "status": "status",
        "source": "event__source",
        "event_type": "event__event_type",
        "error": "error__icontains",
    }
    for key, lookup in lookups.items():
        if key in given:
            query &= Q(**{lookup: given[key]})
    if "since" in given:
        query &= Q(started_at__gte=_moment("since", given["since"]))
    if "until" in given:
        query &= Q(started_at__lt=_moment("until", given["until"]))
    runs = ExecutionRun.objects.filter(query)
    return runs if include_fixed else runs.exclude(Exists(later_runs()))


def preview(filters: dict[str, Any], *, include_fixed: bool = False) -> dict[str, int]:
    """What a bulk replay with ``filters`` would do: ``replay`` runs, and how many matching runs it
    skips (unless ``include_fixed``): ``fixed`` (a later run of the workflow on the event
    succeeded) and ``superseded`` (a later run exists, not a success)."""
    everything = matching_runs(filters, include_fixed=True)
    later = later_runs()
    succeeded_later = Exists(later.filter(status=RunStatus.SUCCEEDED))
    counts = everything.aggregate(
        total=Count("id"),
        fixed=Count("id", filter=Q(succeeded_later)),
        superseded=Count("id", filter=Q(Exists(later)) & ~Q(succeeded_later)),
    )
    if include_fixed:
        return {"replay": counts["total"], "fixed": 0, "superseded": 0}
    return {
        "replay": counts["total"] - counts["fixed"] - counts["superseded"],
        "fixed": counts["fixed"],
        "superseded": counts["superseded"],
    }


def start_bulk(
    filters: dict[str, Any], mode: str, *, author: str = "", include_fixed: bool = False
) -> BulkReplay:
    """Record a bulk replay and queue the job that carries it out; ``total`` is the preview count.
    ``include_fixed``: replay the runs whose event was fixed (or replayed) since, too."""
    if mode not in BULK_MODES:
        raise WorkflowError(f"Bulk replay modes: {', '.join(BULK_MODES)} (an edited payload is per run).")
    if mode == RunMode.RESUME:
        filters = {**filters, "status": RunStatus.FAILED}
    if include_fixed:
        filters = {**filters, INCLUDE_FIXED: True}
    runs = matching_runs(filters)
    with transaction.atomic():
        stats = runs.aggregate(total=Count("id"), last=Max("id"))
        bulk = BulkReplay.objects.create(
            filter=filters, mode=mode, total=stats["total"], max_run_id=stats["last"] or 0, author=author
        )
        OutboxJob.objects.create(kind=OutboxJob.Kind.EVENT, payload={"bulk_replay": bulk.pk}, max_attempts=5)
    return bulk


def advance_bulk(bulk_id: int, chunk: int | None = None) -> bool:
    """Queue the next chunk of a bulk replay; True when it is done. Runs on a worker."""
    chunk = chunk or CHUNK
    with transaction.atomic():
        bulk = BulkReplay.objects.select_for_update().filter(pk=bulk_id).first()
        if bulk is None or bulk.status == BulkReplay.Status.DONE:
            return True
        runs = matching_runs(bulk.filter).filter(id__gt=bulk.cursor, id__lte=bulk.max_run_id).order_by("id")
        selected = list(runs.values_list("id", flat=True)[:chunk])
        for run_id in selected:
            try:
                replay(run_id, bulk.mode, bulk=bulk)
            except WorkflowError:  # its workflow was deleted meanwhile, or it has no versions
                continue
            bulk.queued += 1
        bulk.cursor = selected[-1] if selected else bulk.max_run_id
        done = len(selected) < chunk
        bulk.status = BulkReplay.Status.DONE if done else BulkReplay.Status.RUNNING
        if done:
            bulk.finished_at = timezone.now()
        bulk.save()
        return done


def progress(bulk: BulkReplay) -> dict[str, Any]:
    """How far a bulk replay got: replays queued so far, and their runs by status."""
    by_status = {row["status"]: row["n"] for row in bulk.runs.values("status").annotate(n=Count("id"))}
    return {
        "id": bulk.pk,
        "status": bulk.status,
        "mode": bulk.mode,
        "filter": bulk.filter,
        "total": bulk.total,
        "queued": bulk.queued,
        "runs": by_status,
    }
