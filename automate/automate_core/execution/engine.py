"""``ExecutionEngine``: runs the workflows of one claimed job and tells the worker what to do next.

A job is one of:

* an **event job** (``payload`` empty): the rule index gives the workflows whose globs match;
  those whose trigger ``condition`` is false are left out (a condition that names a missing
  key counts as false); each remaining workflow runs its current version;
* a **run job** (``payload = {"run": id}``), queued by a manual trigger or a replay: it carries
  out that queued run (pinned version, mode, parent), unless it was cancelled meanwhile; the run
  turns ``running`` only once its concurrency slot is taken, so a snoozed run stays ``queued``;
* a **bulk replay job** (``payload = {"bulk_replay": id}``): queues the next chunk of replays
  and snoozes itself until the filter is exhausted (``execution.replay``);
* a **wake job** (``payload = {"wake": id}``) of a waiting run (``execution.wake``): once its
  wait is over it resumes the run on the same record, exactly once.

An event job also resolves the open ``wait_for_event`` waits it matches (an index lookup, and
no query at all for events no workflow waits for).

Before anything runs, each workflow with a concurrency limit takes a slot in PostgreSQL; when a
limit is full nothing runs and the job is snoozed (put back without spending the attempt).

On any later claim of the job (a retry, a rescue after a lost lease, or a claim handed back by a
worker cut off from the database after it had written a run) the job resumes rather than
repeats: a workflow whose last run for this job succeeded (or was cancelled) is not run again,
and one that failed resumes from its failed step on the version it ran, reusing the outputs of
the steps before it. So a retry never repeats the side effects of steps that already succeeded.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from automate_core import masking
from automate_core.conf import settings
from automate_core.exceptions import TemplateError
from automate_core.execution import late_start, templating
from automate_core.execution.actions import now
from automate_core.execution.concurrency import ConcurrencySlots, Slot
from automate_core.execution.controls.gate import Gate, gated
from automate_core.execution.grouping import Grouper
from automate_core.execution.journal import RunJournal
from automate_core.execution.runner import Plan, RunOutcome, WorkflowRunner, event_context
from automate_core.execution.waits import waits
from automate_core.execution.wake import Waker
from automate_core.outbox.retry import RetryPolicy
from automate_core.outbox.store import ClaimedEvent, ClaimedJob
from automate_core.rules.engine import RuleEngine, WorkflowSpec

logger = logging.getLogger("automate.execution")

__all__ = ["ExecutionEngine", "JobOutcome", "RunOutcome", "event_context", "now", "workflow_policy"]

REUSABLE = ("succeeded", "skipped", "reused")


@dataclass(slots=True)
class JobOutcome:
    """What the worker should do with the job; the engine decides, the dispatcher applies it.

    * ``succeeded``: complete the job.
    * otherwise, when ``retryable`` and attempts are left under ``retry_policy`` (or the job's
      ``max_attempts`` when no policy is given), retry after the policy's backoff (at least
      ``retry_after``); else the job is dead. ``error`` is recorded as the job's last error.
    * ``snooze``: not a failure; put the job back for that many seconds without spending the
      attempt (e.g. a concurrency limit is full).
    """

    succeeded: bool
    retryable: bool = False
    error: str = ""
    retry_after: float | None = None
    retry_policy: RetryPolicy | None = None
    snooze: float | None = None
    runs: list[RunOutcome] = field(default_factory=list)


def workflow_policy(workflow: WorkflowSpec) -> RetryPolicy:
    """The job retry policy of a workflow: its attempts and backoff, or the platform's defaults."""
    base = workflow.retry_base_seconds
    ceiling = workflow.retry_max_seconds
    return RetryPolicy(
        max_attempts=workflow.max_attempts,
        base_seconds=float(settings.RETRY_BASE_SECONDS if base is None else base),
        max_seconds=float(settings.RETRY_MAX_SECONDS if ceiling is None else ceiling),
    )


def reusable_prefix(steps: list[Any]) -> dict[str, tuple[str, Any]]:
    """The last outcome of each recorded step, by name: the walk reuses them in order up to the
    first step without one (a failed step is reused only past ``continue_on_error``), and a
    construct's items and branches each by their own name (only those that did not succeed run
    again)."""
    reuse: dict[str, tuple[str, Any]] = {}
    for step in steps:
        if step.status in REUSABLE:
            reuse[step.name] = ("succeeded" if step.status == "reused" else step.status, step.output)
        elif step.status == "failed":
            reuse[step.name] = ("failed", None)
    return reuse


class ExecutionEngine:
    def __init__(
        self,
        rules: RuleEngine | None = None,
        journal: RunJournal | None = None,
        slots: ConcurrencySlots | None = None,
    ) -> None:
        self.rules = rules or RuleEngine()
        self.journal = journal or RunJournal()
        self.slots = slots or ConcurrencySlots()
        self.runner = WorkflowRunner(self.journal)
        self.gate = Gate(self.slots)  # admission controls (execution/controls/)
        self.wake = Waker(self)
        self.grouping = Grouper(self)  # debounce and batch (execution.grouping)

    async def handle_event(self, job: ClaimedJob) -> JobOutcome:
        directive = job.payload if isinstance(job.payload, dict) else {}
        if "bulk_replay" in directive:
            return await self._advance_bulk(int(directive["bulk_replay"]))
        event = job.event
        if event is None:
            return JobOutcome(False, error="The job has no event.")
        await self.rules.refresh(job.generation)
        if "wake" in directive:
            return await self.wake.handle(job, event, int(directive["wake"]))
        if not directive and (paths := self.rules.wait_paths(event.source, event.event_type)):
            await waits.match_event(paths, event.id, event.source, event.event_type, event.payload)
        if "flush" in directive:  # a debounce window or a batch is due: its queued run
            flushed = await self.grouping.flush(job, event, int(directive["flush"]))
            if isinstance(flushed, JobOutcome):
                return flushed
            event, plans = flushed
            context = {"event": event_context(event)}
        elif "run" in directive:
            context = {"event": event_context(event)}
            plans = await self._plan_queued(job, int(directive["run"]))
        else:
            matched = self.rules.match(event.source, event.event_type)
            if not matched:  # the common case for many event types: no query, nothing built
                return JobOutcome(True)
            context = {"event": event_context(event)}
            plans = self._plan_matches(matched, context)
            if gated(plans):  # rate limit, throttle, hand-off to a run job (execution/controls/)
                plans = await self.gate.admit(plans, context, job)
            if plans and job.attempts > 1:  # any earlier claim, spent or handed back
                plans = await self._plan_retry(job, plans)
            if any(p.workflow.debounce or p.workflow.batch for p in plans):  # they join a group
                plans = await self.grouping.absorb(plans, event, context, job.queue)
        if not plans:
            return JobOutcome(True)
        slots = await self._acquire(plans, context, job)
        if slots is None:
            return JobOutcome(
                False, snooze=float(settings.CONCURRENCY_SNOOZE_SECONDS) * random.uniform(0.8, 1.2)
            )
        try:
            return await self._run(plans, event, job, slots)
        finally:
            for slot in slots.values():
                await self.slots.release(slot)

    async def _run(
        self, plans: list[Plan], event: ClaimedEvent, job: ClaimedJob, slots: dict[int, Slot]
    ) -> JobOutcome:
        outcome = JobOutcome(True)
        fresh = job.run_id  # the id the claim drew: the first new plain run takes it
        for plan in plans:
            if fresh is not None and late_start.eligible(plan):
                plan.late_id, fresh = fresh, None
            run = await self.runner.run(plan, event, job)
            slot = slots.pop(plan.workflow.id, None)
            if slot is not None:  # free it for the next run of that key at once
                await self.slots.release(slot)
            outcome.runs.append(run)
            if run.succeeded:
                continue
            workflow = plan.workflow
            outcome.succeeded = False
            outcome.error = masking.masker.mask(f"{workflow.name}: {run.error}")
            outcome.retryable = outcome.retryable or run.retryable
            policy = workflow_policy(workflow)
            if outcome.retry_policy is None or policy.max_attempts > outcome.retry_policy.max_attempts:
                outcome.retry_policy = policy
            if run.retry_after is not None:
                outcome.retry_after = max(outcome.retry_after or 0.0, run.retry_after)
        return outcome

    # -- planning ---------------------------------------------------------------------------

    def _plan_matches(self, matched: tuple[WorkflowSpec, ...], context: dict[str, Any]) -> list[Plan]:
        plans = []
        for workflow in matched:
            if not workflow.condition:
                plans.append(Plan(workflow))
                continue
            try:
                if templating.evaluate(workflow.condition, context, undefined_is_false=True):
                    plans.append(Plan(workflow))
            except TemplateError as exc:  # recorded as a failed run, so that it is seen
                plans.append(Plan(workflow, error=f"trigger condition: {exc}"))
        return plans

    async def _plan_queued(self, job: ClaimedJob, run_id: int) -> list[Plan]:
        queued = await self.journal.queued_run(run_id)
        if queued is None or queued.status in ("cancelled", "waiting"):
            return []
        if queued.status != "queued":  # an earlier attempt of this job started it: resume that
            previous = await self.journal.previous_runs(job.id)
            return [plan for p in previous.values() if (plan := await self._resume_plan(p)) is not None]
        if queued.version_id is None:
            await self.journal.begin_queued_run(run_id, job.spent)
            await self.journal.finish_run(run_id, "failed", "The workflow version no longer exists.")
            return []
        spec = await self.rules.version(queued.version_id)
        plan = Plan(spec, run_id=run_id, queued=True, mode=queued.mode, parent_id=queued.parent_id)
        if queued.mode == "call":
            plan.input = await self.journal.run_input(run_id)
        if queued.mode == "resume" and queued.parent_id is not None:
            plan.reuse = reusable_prefix(await self.journal.run_steps(queued.parent_id))
        return [plan]

    async def _plan_retry(self, job: ClaimedJob, plans: list[Plan]) -> list[Plan]:
        event_id = job.event.id if job.event is not None else None
        previous = await self.journal.previous_runs(job.id, event_id)
        kept = []
        for plan in plans:
            earlier = previous.get(plan.workflow.id)
            if earlier is None:
                kept.append(plan)
            elif earlier.job_id not in (None, job.id):
                continue  # another job carries that run now (it parked here and woke): not ours
            elif (resumed := await self._resume_plan(earlier)) is not None:
                kept.append(resumed)
        return kept

    async def _resume_plan(self, earlier: Any) -> Plan | None:
        """The next attempt of a workflow's run: nothing when it succeeded, else resume it."""
        final = ("succeeded", "cancelled", "skipped", "queued", "waiting")  # skipped: by an admission control
        if earlier.status in final or earlier.version_id is None:
            return None
        if earlier.status == "running":  # its worker died mid-run, or ends it right now
            ended = await self.journal.abandon_run(earlier.id)
            if ended in ("succeeded", "cancelled", "deleted"):
                return None
        spec = await self.rules.version(earlier.version_id)
        reuse = reusable_prefix(await self.journal.run_steps(earlier.id))
        plan = Plan(spec, mode=earlier.mode, parent_id=earlier.parent_id, reuse=reuse)
        if earlier.mode == "call":
            plan.input = await self.journal.run_input(earlier.id)
        return plan

    async def _acquire(
        self, plans: list[Plan], context: dict[str, Any], job: ClaimedJob
    ) -> dict[int, Slot] | None:
        """A slot for every limited workflow, or None (and nothing held) when one is full."""
        held: dict[int, Slot] = {}
        if gated(plans):  # singleton locks (execution/controls/singleton.py), keyed -workflow_id
            if (locks := await self.gate.lock(plans, context, job)) is None:
                return None
            held.update(locks)
        for plan in plans:
            limit = plan.workflow.concurrency_limit
            if limit is None or plan.error:
                continue
            try:
                key = templating.render(plan.workflow.concurrency_key, context)
            except TemplateError as exc:
                plan.error = f"concurrency key: {exc}"
                continue
            plan.key = "" if key is None else str(key)
            slot = await self.slots.acquire(plan.workflow.id, plan.key, limit, job.id, job.attempts)
            if slot is None:
                for taken in held.values():
                    await self.slots.release(taken)
                logger.debug("workflow %s: concurrency limit full for key %r", plan.workflow.name, plan.key)
                return None
            held[plan.workflow.id] = slot
        return held

    # -- bulk replay ------------------------------------------------------------------------

    async def _advance_bulk(self, bulk_id: int) -> JobOutcome:
        from automate_core.execution import replay

        done = await sync_to_async(replay.advance_bulk)(bulk_id)
        if done:
            return JobOutcome(True)
        return JobOutcome(False, snooze=0.0)  # more to queue: come back at once, attempt kept
