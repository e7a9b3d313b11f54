"""Debounce and batching: many matching events, one run (``debounce:`` / ``batch:`` in the file).

* ``debounce: {period: 30s, key: "{{ event.payload.user }}", max_wait: 5m}``: one run, ``period``
  after the last matching event of the key, on that last event; a steady stream still runs once
  ``max_wait`` after the first event of the window (default: ten periods).
* ``batch: {max_size: 100, timeout: 10s, key: ...}``: one run with up to ``max_size`` events, as
  soon as the batch is full, or ``timeout`` after its first event; the run's templates see
  ``events`` (the list, in arrival order) and ``event`` (the last of them).

An event job does not run such a workflow: :meth:`Grouper.absorb` renders the key and the event
joins the group open for (workflow, key), or opens one with its queued run and its *flush job*
parked at the deadline (``grouping_queries``: one statement under the key's advisory lock). The
flush job (``payload = {"flush": id}``) closes the group once it is due (:meth:`Grouper.flush`)
and hands the queued run back to the engine, which carries it out like any queued run (its
concurrency limit included); a later claim of the flush job resumes that run, never a second one.
A workflow without these keys never reaches this module (no query).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import TemplateError
from automate_core.execution import grouping_queries as q
from automate_core.execution import templating
from automate_core.execution.constructs.base import (
    DURATION,
    DefinitionProblem,
    check_int,
    check_keys,
    check_template,
    parse_duration,
)
from automate_core.execution.runner import Plan, event_context
from automate_core.outbox.store import ClaimedEvent, ClaimedJob

if TYPE_CHECKING:
    from automate_core.execution.engine import ExecutionEngine, JobOutcome

logger = logging.getLogger("automate.execution")

KINDS = ("debounce", "batch")
DEBOUNCE_KEYS = {"period", "key", "max_wait"}
BATCH_KEYS = {"max_size", "timeout", "key"}
MAX_KEY_LENGTH = 200
#: A debounce without ``max_wait`` runs at the latest this many periods after its first event.
DEFAULT_MAX_WAIT_PERIODS = 10
MIN_SECONDS = 0.1

#: The JSON Schema of the two keys (``automate schema``).
SCHEMA: dict[str, dict[str, Any]] = {
    "debounce": {
        "period": {**DURATION, "description": "run this long after the last event of the key"},
        "max_wait": {**DURATION, "description": "at the latest this long after the first (10 periods)"},
        "key": {"type": "string", "description": "a template; one window per rendered key (default: one)"},
    },
    "batch": {
        "max_size": {"type": "integer", "minimum": 1, "description": "flush at once with this many events"},
        "timeout": {**DURATION, "description": "or this long after the batch's first event"},
        "key": {"type": "string", "description": "a template; one buffer per rendered key (default: one)"},
    },
}  # fmt: skip
REQUIRED = {"debounce": ["period"], "batch": ["max_size", "timeout"]}


# -- the file format --------------------------------------------------------------------------


def normalize(where: str, item: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A workflow's ``debounce`` / ``batch`` settings, validated (``{}`` without them)."""
    from automate_core.execution import constructs
    from automate_core.rules.flow import iter_steps

    given = [k for k in KINDS if item.get(k) is not None]
    if not given:
        return {}
    if len(given) == 2:
        raise DefinitionProblem(
            f"{where}: debounce and batch do not combine (a debounce runs once on the last event, a "
            f"batch once with every event); keep one of them."
        )
    (kind,) = given
    at = f"{where}.{kind}"
    value = check_keys(
        at, item[kind], DEBOUNCE_KEYS if kind == "debounce" else BATCH_KEYS, set(REQUIRED[kind])
    )
    key = value.get("key") or ""
    if not isinstance(key, str):
        raise DefinitionProblem(f"{at}.key: expected a template string, got {key!r}.")
    check_template(f"{at}.key", key)
    if kind == "debounce":
        period = parse_duration(f"{at}.period", value["period"], minimum=MIN_SECONDS)
        max_wait = value.get("max_wait")
        cap = period * DEFAULT_MAX_WAIT_PERIODS if max_wait is None else parse_duration(
            f"{at}.max_wait", max_wait, minimum=MIN_SECONDS
        )  # fmt: skip
        if cap < period:
            raise DefinitionProblem(
                f"{at}.max_wait: must be at least the period ({period:g}s), got {max_wait!r}."
            )
        return {"debounce": {"period": period, "max_wait": cap, "key": key}}
    size = check_int(f"{at}.max_size", value["max_size"], minimum=1, maximum=int(settings.FLOW_MAX_ITEMS))
    timeout = parse_duration(f"{at}.timeout", value["timeout"], minimum=MIN_SECONDS)
    for j, top in enumerate(steps):
        for step in iter_steps([top]):
            kind_of = step.get("kind", "action")
            if kind_of != "action" and constructs.get(kind_of).durable:
                raise DefinitionProblem(
                    f"{where}.steps[{j}] ({step['name']}): a batch workflow's steps cannot {kind_of} "
                    f"(its run carries its list of events only while it runs)."
                )
    return {"batch": {"max_size": size, "timeout": timeout, "key": key}}


def run_scope(plan: Plan, scope: dict[str, Any]) -> dict[str, Any]:
    """What a run of a batch workflow sees besides ``event``: ``events`` and ``batch``. A run that
    is not a flush (a manual trigger, a replay, test mode) is a batch of one: its event."""
    if plan.scope:
        return plan.scope
    return {"events": [scope["event"]], "batch": {"size": 1, "key": "", "flushed_by": ""}}


# -- the store ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    kind: str
    workflow_id: int
    key: str
    status: str
    run_id: int
    job_id: int
    size: int
    first_event_id: int
    last_event_id: int
    first_at: datetime
    deadline: datetime
    flushed_by: str


class GroupStore:
    async def join(
        self, kind: str, settings_: dict[str, Any], plan: Plan, event: ClaimedEvent, queue: str = "default"
    ) -> tuple[Any, ...]:
        """The event joins its group (or opens one); ``(outcome, group_id, run_id, status)``. A new
        group's flush job goes on ``queue``, the queue of the event's job (workers of that queue
        took the event; they carry its run)."""
        workflow = plan.workflow
        params = {
            "kind": kind,
            "workflow_id": workflow.id,
            "workflow_name": workflow.name,
            "version_id": workflow.version_id,
            "key": plan.key,
            "event_id": event.id,
            "trace_id": event.trace_id,
            "period": float(settings_["period"] if kind == "debounce" else settings_["timeout"]),
            "max_wait": float(settings_.get("max_wait") or 0.0),
            "max_size": settings_.get("max_size"),
            "max_attempts": workflow.max_attempts,
            "queue": queue,
        }
        pool = await db.get_pool()
        for _ in range(3):
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(q.LOCK_KEY, params)
                cur = await conn.execute(q.JOIN_GROUP, params)
                row = await cur.fetchone()
                if row is not None:
                    return tuple(row)
                await conn.execute(q.RETIRE_GROUP, params)  # its run was cancelled: the next one
        raise RuntimeError(f"event {event.id} could not join a group of workflow {workflow.name}")

    async def get(self, group_id: int) -> Group | None:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(q.GET_GROUP, {"group_id": group_id})
            row = await cur.fetchone()
        return Group(*row) if row else None

    async def close(self, group: Group) -> Group | None:
        """open/full -> flushed, once due; None when it is not (yet) or another claim closed it."""
        params = {"group_id": group.id, "workflow_id": group.workflow_id, "key": group.key}
        pool = await db.get_pool()
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(q.LOCK_KEY, params)
            cur = await conn.execute(q.CLOSE_GROUP, params)
            row = await cur.fetchone()
        return Group(*row) if row else None

    async def events(self, group: Group, *, every: bool) -> list[ClaimedEvent]:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                q.GROUP_EVENTS, {"group_id": group.id, "all": every, "last_event_id": group.last_event_id}
            )
            return [ClaimedEvent(*row) for row in await cur.fetchall()]


def describe_run(run_id: int, job_id: int | None) -> str:
    """What a debounce or batch run carried out (``automate runs ID``): its group, in words."""
    from django.db.models import Q

    from automate_core.models import EventGroup, GroupMember

    where = Q(run_id=run_id) | Q(job_id=job_id) if job_id else Q(run_id=run_id)
    group = EventGroup.objects.filter(where).first()
    if group is None:
        return ""
    ids = list(
        GroupMember.objects.filter(group_id=group.pk).order_by("event_id").values_list("event_id", flat=True)
    )
    shown = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
    key = f" key {group.key!r}" if group.key else ""
    how = f"flushed by {group.flushed_by}" if group.flushed_by else group.status
    return f"{group.kind} #{group.pk}{key}: {group.size} events ({how}): {shown}"


def describe_event(event_id: int) -> list[str]:
    """Why an event has no run of its own: the windows and batches it joined, and their runs."""
    from automate_core.models import Workflow

    lines = []
    for g in groups_of_event(event_id):
        name = Workflow.objects.filter(pk=g["workflow_id"]).values_list("name", flat=True).first()
        key = f" key {g['key']!r}" if g["key"] else ""
        lines.append(
            f"event {event_id} joined {g['kind']} #{g['id']} of {name or g['workflow_id']}{key} "
            f"({g['size']} events, {g['status']}): its run is #{g['run_id']}"
        )
    return lines


def groups_of_event(event_id: int) -> list[dict[str, Any]]:
    """The groups an event joined (one per debounced or batched workflow), for the CLI and the
    console: why the event has no run of its own, and which run carries it."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(q.GROUPS_OF_EVENT, {"event_id": event_id})
        names = ["id", "kind", "workflow_id", "key", "status", "run_id", "size", "position"]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# -- the engine's two calls ---------------------------------------------------------------------


class Grouper:
    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine
        self.store = GroupStore()

    async def absorb(
        self, plans: list[Plan], event: ClaimedEvent, context: dict[str, Any], queue: str = "default"
    ) -> list[Plan]:
        """The event joins the group of each debounced or batched workflow; returns the plans that
        still run now (the others, and a grouped one whose key failed: a failed run that says so)."""
        kept = []
        for plan in plans:
            workflow = plan.workflow
            kind = "debounce" if workflow.debounce else "batch" if workflow.batch else ""
            if not kind or plan.error:
                kept.append(plan)
                continue
            spec: dict[str, Any] = workflow.debounce or workflow.batch or {}
            try:
                key = templating.render(spec["key"], context) if spec["key"] else ""
            except TemplateError as exc:
                plan.error = f"{kind} key: {exc}"
                kept.append(plan)
                continue
            plan.key = ("" if key is None else str(key))[:MAX_KEY_LENGTH]
            outcome, group_id, run_id, status = await self.store.join(kind, spec, plan, event, queue)
            logger.debug(
                "event %s %s %s #%s of %s (key %r, run %s, %s)",
                event.id, outcome, kind, group_id, workflow.name, plan.key, run_id, status,
            )  # fmt: skip
        return kept

    async def flush(
        self, job: ClaimedJob, event: ClaimedEvent, group_id: int
    ) -> JobOutcome | tuple[ClaimedEvent, list[Plan]]:
        """A flush job: close its group once due, then the group's queued run, with its events."""
        from automate_core.execution.engine import JobOutcome

        group = await self.store.get(group_id)
        if group is None:
            return JobOutcome(True)
        if group.status != "flushed":
            group = await self.store.close(group) or await self.store.get(group_id)
            if group is None:
                return JobOutcome(True)
            if group.status != "flushed":  # a debounce pushed by a later event: come back then
                left = (group.deadline - datetime.now(UTC)).total_seconds()
                return JobOutcome(False, snooze=max(0.05, left))
            logger.info("%s #%s flushed (%s): %s events -> run %s", group.kind, group.id,
                        group.flushed_by, group.size, group.run_id)  # fmt: skip
        plans = await self.engine._plan_queued(job, group.run_id)
        if not plans:
            return JobOutcome(True)
        events = await self.store.events(group, every=group.kind == "batch")
        if not events:  # the events were pruned: only a very old flush job gets here
            return JobOutcome(False, error=f"{group.kind} #{group.id}: its events no longer exist")
        last = events[-1]
        if group.kind == "batch":
            scope = {
                "events": [event_context(e) for e in events],
                "batch": {"size": len(events), "key": group.key, "flushed_by": group.flushed_by},
            }
            for plan in plans:
                plan.scope = scope
        return last, plans
