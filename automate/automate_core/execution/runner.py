"""``WorkflowRunner``: the interpreter of one workflow run: walks its steps and records them.

A step is an *action* (a connector call, below) or a flow *construct* (``execution.constructs``:
sleep, wait_for_event, approval, for_each, parallel, switch, call), which the walk hands to the
construct's module. A durable construct parks the run (``Suspended``): the run becomes
``waiting``, its job completes, and the run's wake job resumes it later on the same run record,
reusing every step recorded so far (docs/architecture.md, the run's state machine).

Action steps run as ``execution.actions`` says (conditions, rendering, retries, output size).

Cancellation is cooperative: every step record returns the run's status, and a run cancelled
meanwhile stops before its next step.

Run records are fenced by the job's claim (``journal``): a worker whose lease was taken over (it
was frozen, cut off or slow) cannot start a run, stops at its next step record once the new claim
has abandoned its run, and cannot end a run ``succeeded``. Such a run is *superseded*: the new
claim resumes it, and the event keeps exactly one succeeded run per workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automate_core import context as log_context
from automate_core import masking
from automate_core.exceptions import (
    LeaseExpired,
    TemplateError,
)
from automate_core.execution import late_start, templating
from automate_core.execution.actions import (
    ActionSteps,
    Cancelled,
    StepFailed,
    now,
)
from automate_core.execution.journal import RunJournal, RunStart, StepRecord
from automate_core.observability import metrics, tracing
from automate_core.outbox.store import ClaimedEvent, ClaimedJob
from automate_core.rules.engine import StepSpec, WorkflowSpec


@dataclass(slots=True)
class Plan:
    """One workflow to run for the event, and how."""

    workflow: WorkflowSpec
    run_id: int | None = None  # a queued run to carry out (manual trigger, replay); else a new run
    queued: bool = False  # run_id is still queued: start it (unless it was cancelled meanwhile)
    mode: str = ""
    parent_id: int | None = None
    reuse: dict[str, tuple[str, Any]] = field(default_factory=dict)  # step name -> (status, output)
    error: str = ""  # the workflow cannot run at all (its condition or key failed to render)
    key: str = ""  # the rendered concurrency key
    continuing: bool = False  # run_id is a woken run: go on with it (its records are its own)
    late_id: int | None = None  # a new plain run: the id its job's claim drew (execution.late_start)
    input: Any = None  # a called run's input (``call`` steps)
    woken: Any = None  # the wait a woken run ended (a run has one open wait at a time)
    scope: dict[str, Any] = field(default_factory=dict)  # a batch's ``events`` (execution.grouping)


@dataclass(slots=True)
class RunOutcome:
    workflow: WorkflowSpec
    run_id: int
    succeeded: bool
    error: str = ""
    retryable: bool = False
    retry_after: float | None = None
    cancelled: bool = False
    superseded: bool = False  # the job's claim was taken over: this worker wrote nothing final
    waiting: bool = False  # the run parked on a wait; its wake job resumes it


class Suspended(Exception):
    """The run parked on a wait (a durable construct opened it): stop here, hold nothing."""


@dataclass
class Walk:
    """One pass of the interpreter over a run: what constructs read and call back into."""

    runner: WorkflowRunner
    plan: Plan
    run_id: int
    event: ClaimedEvent
    job: ClaimedJob | None
    scope: dict[str, Any]
    reusing: bool
    record_reuse: bool  # a new run resuming an earlier one records what it reuses
    tolerated: list[str] = field(default_factory=list)
    waits: dict[str, Any] = field(default_factory=dict)  # this run's waits by step (woken runs)
    depth: int = 0
    held: list[StepRecord] = field(default_factory=list)  # the last step's record, for the run's end

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run

    async def steps(self, steps: tuple[StepSpec, ...]) -> None:
        await self.runner.walk(self, steps)

    async def action(self, step: StepSpec, *, name: str | None = None, item: Any = None) -> dict[str, Any]:
        """Run one action step (a construct's child), recorded under ``name``; StepFailed."""
        return await self.runner.run_action(self, step, name=name, item=item)

    async def record(
        self, step: StepSpec, status: str, output: Any = None, error: str = "", *,
        params: Any = None, started: datetime | None = None, name: str | None = None,
    ) -> None:  # fmt: skip
        await self.runner.record(
            self.run_id, step, status, params, output, error, started or now(), name=name
        )

    def render(self, value: Any, extra: dict[str, Any] | None = None) -> Any:
        return templating.render(value, {**self.scope, **extra} if extra else self.scope)


def event_context(event: ClaimedEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "type": event.event_type,
        "payload": event.payload,
        "headers": event.headers,
        "trace_id": event.trace_id,
        "received_at": event.received_at.isoformat(),
    }


class WorkflowRunner(ActionSteps):
    def __init__(self, journal: RunJournal, *, dry_run: bool = False) -> None:
        self.journal = journal
        self.dry_run = dry_run

    async def run(
        self, plan: Plan, event: ClaimedEvent, job: ClaimedJob | None, *, until: str | None = None
    ) -> RunOutcome:
        """Run the plan's workflow; ``until`` stops after that step (test mode)."""
        workflow = plan.workflow
        attempt = job.spent if job else 1  # attempts spent; snoozes do not count
        attributes: dict[str, Any] = {
            "automate.workflow": workflow.name,
            "automate.workflow.version": workflow.version,
            "automate.event.id": event.id,
        }
        try:
            with (
                log_context.bind(workflow=workflow.name, run_id=plan.run_id, event_id=event.id),
                tracing.span(f"run {workflow.name}", **attributes) as span,
            ):
                outcome = await self._run(plan, event, job, attempt, until)
                if span is not None:
                    span.set_attribute("automate.run.id", outcome.run_id)
                    status = (
                        "waiting" if outcome.waiting else ("succeeded" if outcome.succeeded else "failed")
                    )
                    span.set_attribute("automate.run.status", status)
                return outcome
        except LeaseExpired as exc:
            metrics.child(metrics.runs_finished, workflow.name, "superseded").inc()
            run_id = plan.run_id or plan.late_id or 0
            return RunOutcome(workflow, run_id, False, str(exc), True, superseded=True)

    async def _run(
        self, plan: Plan, event: ClaimedEvent, job: ClaimedJob | None, attempt: int, until: str | None
    ) -> RunOutcome:
        workflow = plan.workflow
        run_id = plan.run_id
        if run_id is None:
            after = late_start.delay()
            late = not (plan.late_id is None or self.dry_run or after <= 0 or job is None or not job.fresh)
            start = RunStart(
                plan.late_id if late else None, workflow.id, workflow.name, workflow.version_id,
                event.id, job.id if job else None, job.attempts if job else None, attempt,
                event.trace_id, plan.mode, plan.parent_id, now() if late else None,
            )  # fmt: skip
            if not late:
                run_id = await self.journal.write_start(start)
            else:  # written with its first record, or once it has run ``after`` seconds
                run_id = int(start.run_id or 0)
                self.journal.begin_late(start, after)
                try:
                    return await self._go(plan, event, job, run_id, until)
                finally:
                    self.journal.end_late(run_id)
        elif plan.queued and not await self.journal.begin_queued_run(run_id, attempt):
            return RunOutcome(workflow, run_id, True, cancelled=True)  # cancelled while it waited
        return await self._go(plan, event, job, run_id, until)

    async def _go(
        self, plan: Plan, event: ClaimedEvent, job: ClaimedJob | None, run_id: int, until: str | None
    ) -> RunOutcome:
        """Walk the run's steps and write its end."""
        workflow = plan.workflow
        log_context.add(run_id=run_id)
        if plan.error:
            return await self._finish(workflow, run_id, job, plan, plan.error, retryable=False)
        scope: dict[str, Any] = {"event": event_context(event), "steps": {}, "run": {"id": run_id}}
        if plan.input is not None:
            scope["input"] = plan.input
        if workflow.batch:  # its events (execution.grouping)
            from automate_core.execution.grouping import run_scope

            scope.update(run_scope(plan, scope))
        walk = Walk(
            self, plan, run_id, event, job, scope,
            reusing=bool(plan.reuse), record_reuse=not plan.continuing,
        )  # fmt: skip
        if plan.woken is not None:
            walk.waits = {plan.woken.step_name: plan.woken}
        try:
            await self.walk(walk, workflow.steps, until=until, last=until is None)
        except StepFailed as failure:
            return await self._finish(
                workflow, run_id, job, plan, failure.error,
                retryable=failure.retryable, retry_after=failure.retry_after, held=walk.held,
            )  # fmt: skip
        except Suspended:
            metrics.child(metrics.runs_finished, workflow.name, "waiting").inc()
            return RunOutcome(workflow, run_id, True, waiting=True)
        except Cancelled:
            return self._cancelled(workflow, run_id)
        tolerated = walk.tolerated
        error = f"continued past failed steps: {', '.join(tolerated)}" if tolerated else ""
        if await self._close(run_id, job, "succeeded", error, walk.held) == "cancelled":
            return self._cancelled(workflow, run_id)
        metrics.child(metrics.runs_finished, workflow.name, "succeeded").inc()
        if plan.mode == "call" and plan.parent_id is not None:
            await self._answer_caller(plan, run_id, "succeeded", scope, "")
        return RunOutcome(workflow, run_id, True)

    async def walk(
        self, walk: Walk, steps: tuple[StepSpec, ...], *, until: str | None = None, last: bool = False
    ) -> None:
        """Carry out ``steps`` in order; StepFailed ends the run (unless continue_on_error).

        ``last``: these are the run's top-level steps, and the run ends after them (no ``until``):
        the last one's record, when it is an action's, is held for the run's end to write."""
        from automate_core.execution import constructs

        results = walk.scope["steps"]
        final = steps[-1] if last and steps else None
        for step in steps:
            log_context.add(step=step.name)
            reused = walk.plan.reuse.get(step.name) if walk.reusing else None
            if reused is not None and (reused[0] != "failed" or step.continue_on_error):
                status, output = reused
                if walk.record_reuse:
                    await self.record(walk.run_id, step, "reused", None, output, "", now())
                results[step.name] = {"output": output, "status": status}
                if status == "failed":
                    walk.tolerated.append(step.name)
                if step.kind == "switch" and status != "skipped":
                    await constructs.get("switch").resume(walk, step, output)  # type: ignore[attr-defined]
                continue
            walk.reusing = False
            try:
                if step.kind == "action":
                    results[step.name] = await self._run_step(
                        walk.run_id, walk.plan.workflow, step, walk.scope, walk.job,
                        hold=walk.held if step is final else None,
                    )  # fmt: skip
                elif not await self._condition(walk, step):
                    results[step.name] = {"output": None, "status": "skipped"}
                else:
                    results[step.name] = await constructs.get(step.kind).run(walk, step)
            except StepFailed as failure:
                if not step.continue_on_error:
                    raise StepFailed(
                        f"step {step.name}: {failure.error}", failure.retryable, failure.retry_after
                    ) from failure
                walk.tolerated.append(step.name)
                results[step.name] = {"output": None, "status": "failed", "error": failure.error}
            if step.name == until:
                break

    async def _condition(self, walk: Walk, step: StepSpec) -> bool:
        """A construct step's condition: false records it skipped."""
        if not step.condition:
            return True
        started = now()
        try:
            go = templating.evaluate(step.condition, walk.scope)
        except TemplateError as exc:
            error = f"TemplateError: condition: {exc}"
            await self.record(walk.run_id, step, "failed", None, None, error, started)
            raise StepFailed(error, retryable=False) from exc
        if not go:
            await self.record(walk.run_id, step, "skipped", None, None, "condition is false", started)
        return go

    async def run_action(
        self, walk: Walk, step: StepSpec, *, name: str | None = None, item: Any = None
    ) -> dict[str, Any]:
        """A construct's child action, recorded under ``name`` (``reserve[3]``), with ``item``
        (for_each) in its scope; reused when an earlier attempt recorded it done."""
        name = name or step.name
        reused = walk.plan.reuse.get(name)
        if reused is not None and reused[0] != "failed":
            if walk.record_reuse:
                await self.record(walk.run_id, step, "reused", None, reused[1], "", now(), name=name)
            return {"output": reused[1], "status": reused[0]}
        scope = walk.scope if item is None else {**walk.scope, **item}
        return await self._run_step(walk.run_id, walk.plan.workflow, step, scope, walk.job, name=name)

    async def _answer_caller(
        self, plan: Plan, run_id: int, status: str, scope: dict[str, Any], error: str
    ) -> None:
        """A called run ended: its caller's wait resolves with the status and the last output."""
        from automate_core.execution.waits import waits

        outputs = [v.get("output") for v in scope.get("steps", {}).values() if v.get("status") == "succeeded"]
        result = {
            "run_id": run_id,
            "status": status,
            "output": outputs[-1] if outputs else None,
            "error": error,
        }
        assert plan.parent_id is not None
        await waits.child_finished(plan.parent_id, run_id, masking.masker.mask_data(result))

    async def _close(
        self,
        run_id: int,
        job: ClaimedJob | None,
        status: str,
        error: str,
        held: list[StepRecord] | None = None,
    ) -> str | None:
        """Write the run's end under the job's claim, with its last step's record when ``held``
        (one write); LeaseExpired when the claim was taken over. Returns "cancelled" when the run
        was cancelled while that last step ran (the run stays cancelled)."""
        job_id, claim = (job.id, job.attempts) if job else (None, None)
        if held:
            (step,) = held
            held.clear()
            recorded, written = await self.journal.close_run(
                run_id, status, error, step, job_id=job_id, claim=claim
            )
            if recorded == "cancelled":
                return "cancelled"
            if recorded != "running":  # as record_step: a new claim abandoned the run meanwhile
                raise LeaseExpired(f"Run {run_id} was taken over by a new claim of its job ({recorded}).")
        else:
            written = await self.journal.finish_run(run_id, status, error, job_id=job_id, claim=claim)
        if written is not None and written != status:
            raise LeaseExpired(f"The job of run {run_id} was taken over while the run was ending.")
        return written

    @staticmethod
    def _cancelled(workflow: WorkflowSpec, run_id: int) -> RunOutcome:
        metrics.child(metrics.runs_finished, workflow.name, "cancelled").inc()
        return RunOutcome(workflow, run_id, True, cancelled=True)

    async def _finish(
        self,
        workflow: WorkflowSpec,
        run_id: int,
        job: ClaimedJob | None,
        plan: Plan,
        error: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        held: list[StepRecord] | None = None,
    ) -> RunOutcome:
        error = masking.masker.mask(error)
        if await self._close(run_id, job, "failed", error, held) == "cancelled":
            return self._cancelled(workflow, run_id)
        metrics.child(metrics.runs_finished, workflow.name, "failed").inc()
        final = not retryable or job is None or job.spent >= workflow.max_attempts
        if plan.mode == "call" and plan.parent_id is not None and final:  # no attempt left: tell the caller
            await self._answer_caller(plan, run_id, "failed", {}, error)
        return RunOutcome(workflow, run_id, False, error, retryable, retry_after)
