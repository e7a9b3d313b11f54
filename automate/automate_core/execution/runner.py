"""``WorkflowRunner``: runs one workflow's steps for one event and records them.

For each step, in order: its ``condition`` decides whether it runs (false: recorded as skipped);
its parameters are rendered (sandboxed Jinja2, ``templating``) with ``secret("NAME")`` resolved
just before; its connector is called under the step's timeout; a retryable failure is tried
again up to the step's ``retry.max_attempts`` with backoff (each attempt recorded); an output
larger than ``AUTOMATE_STEP_OUTPUT_MAX_BYTES`` fails the step. A failed step fails the run unless
it has ``continue_on_error``. Later steps see ``steps.<name>.output`` (and ``.status``).

A plan may carry outputs to *reuse*: a resume (replay, or a job's retry) records the steps that
already succeeded as ``reused`` with their recorded output and calls nothing for them.

Cancellation is cooperative: every step record returns the run's status, and a run cancelled
meanwhile stops before its next step.

Run records are fenced by the job's claim (``journal``): a worker whose lease was taken over (it
was frozen, cut off or slow) cannot start a run, stops at its next step record once the new claim
has abandoned its run, and cannot end a run ``succeeded``. Such a run is *superseded*: the new
claim resumes it, and the event keeps exactly one succeeded run per workflow.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from automate_core import context as log_context
from automate_core import masking
from automate_core.conf import settings
from automate_core.exceptions import (
    AutomateError,
    ConnectorTimeout,
    LeaseExpired,
    PluginError,
    SecretsError,
    StepOutputTooLarge,
    TemplateError,
)
from automate_core.execution import templating
from automate_core.execution.journal import RunJournal, StepRecord
from automate_core.observability import metrics
from automate_core.outbox.store import ClaimedEvent, ClaimedJob
from automate_core.plugins import registry
from automate_core.rules.engine import StepSpec, WorkflowSpec

MAX_STEP_BACKOFF = 60.0


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


class StepFailed(Exception):
    def __init__(self, error: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error, self.retryable, self.retry_after = error, retryable, retry_after


class Cancelled(Exception):
    """The run was cancelled while a step ran; stop before the next one."""


def now() -> datetime:
    return datetime.now(UTC)


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


def classify(exc: BaseException) -> tuple[str, bool, float | None]:
    """(message, retryable, retry_after) of a step's failure.

    Errors that carry ``retryable`` (connectors, LLM providers) decide for themselves; template,
    plugin and output-size errors would fail the same way again; other platform errors (a secrets
    backend that did not answer) are worth another try.
    """
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (TemplateError, PluginError, StepOutputTooLarge)):
        return message, False, None
    retryable = getattr(exc, "retryable", None)
    if isinstance(retryable, bool):
        return message, retryable, getattr(exc, "retry_after", None)
    if isinstance(exc, (SecretsError, AutomateError)):
        return message, True, None
    # anything else escaping a plugin is wrapped, not swallowed
    return f"ConnectorError: unexpected {message}", True, None


def check_output_size(step: StepSpec, output: Any) -> None:
    limit = int(settings.STEP_OUTPUT_MAX_BYTES)
    if output is None or isinstance(output, (bool, int, float)):
        return
    size = len(json.dumps(output, default=str).encode())
    if size > limit:
        raise StepOutputTooLarge(
            f"The step's output is {size} bytes; the limit is {limit} (AUTOMATE_STEP_OUTPUT_MAX_BYTES). "
            f"Have the connector return less (only the fields later steps need), or raise the limit."
        )


class WorkflowRunner:
    def __init__(self, journal: RunJournal, *, dry_run: bool = False) -> None:
        self.journal = journal
        self.dry_run = dry_run

    async def run(
        self, plan: Plan, event: ClaimedEvent, job: ClaimedJob | None, *, until: str | None = None
    ) -> RunOutcome:
        """Run the plan's workflow; ``until`` stops after that step (test mode)."""
        workflow = plan.workflow
        attempt = job.spent if job else 1  # attempts spent; snoozes do not count
        try:
            with log_context.bind(workflow=workflow.name, run_id=plan.run_id, event_id=event.id):
                return await self._run(plan, event, job, attempt, until)
        except LeaseExpired as exc:
            metrics.runs_finished.labels(workflow.name, "superseded").inc()
            return RunOutcome(workflow, plan.run_id or 0, False, str(exc), True, superseded=True)

    async def _run(
        self, plan: Plan, event: ClaimedEvent, job: ClaimedJob | None, attempt: int, until: str | None
    ) -> RunOutcome:
        workflow = plan.workflow
        run_id = plan.run_id
        if run_id is None:
            run_id = await self.journal.start_run(
                workflow_id=workflow.id,
                workflow_name=workflow.name,
                version_id=workflow.version_id,
                event_id=event.id,
                job_id=job.id if job else None,
                attempt=attempt,
                trace_id=event.trace_id,
                mode=plan.mode,
                parent_id=plan.parent_id,
                claim=job.attempts if job else None,
            )
        elif plan.queued and not await self.journal.begin_queued_run(run_id, attempt):
            return RunOutcome(workflow, run_id, True, cancelled=True)  # cancelled while it waited
        log_context.add(run_id=run_id)
        if plan.error:
            return await self._finish(workflow, run_id, job, plan.error, retryable=False)
        scope: dict[str, Any] = {"event": event_context(event), "steps": {}}
        reusing, tolerated = bool(plan.reuse), []
        try:
            for step in workflow.steps:
                log_context.add(step=step.name)
                if reusing and step.name in plan.reuse:
                    status, output = plan.reuse[step.name]
                    await self._record(run_id, step, "reused", None, output, "", now())
                    scope["steps"][step.name] = {"output": output, "status": status}
                    continue
                reusing = False
                try:
                    scope["steps"][step.name] = await self._run_step(run_id, workflow, step, scope, job)
                except StepFailed as failure:
                    if not step.continue_on_error:
                        return await self._finish(
                            workflow, run_id, job, f"step {step.name}: {failure.error}",
                            retryable=failure.retryable, retry_after=failure.retry_after,
                        )  # fmt: skip
                    tolerated.append(step.name)
                    scope["steps"][step.name] = {"output": None, "status": "failed", "error": failure.error}
                if step.name == until:
                    break
        except Cancelled:
            metrics.runs_finished.labels(workflow.name, "cancelled").inc()
            return RunOutcome(workflow, run_id, True, cancelled=True)
        error = f"continued past failed steps: {', '.join(tolerated)}" if tolerated else ""
        await self._close(run_id, job, "succeeded", error)
        metrics.runs_finished.labels(workflow.name, "succeeded").inc()
        return RunOutcome(workflow, run_id, True)

    async def _close(self, run_id: int, job: ClaimedJob | None, status: str, error: str) -> None:
        """Write the run's end under the job's claim; LeaseExpired when the claim was taken over."""
        written = await self.journal.finish_run(
            run_id, status, error, job_id=job.id if job else None, claim=job.attempts if job else None
        )
        if written is not None and written != status:
            raise LeaseExpired(f"The job of run {run_id} was taken over while the run was ending.")

    async def _finish(
        self,
        workflow: WorkflowSpec,
        run_id: int,
        job: ClaimedJob | None,
        error: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> RunOutcome:
        error = masking.masker.mask(error)
        await self._close(run_id, job, "failed", error)
        metrics.runs_finished.labels(workflow.name, "failed").inc()
        return RunOutcome(workflow, run_id, False, error, retryable, retry_after)

    async def _run_step(
        self,
        run_id: int,
        workflow: WorkflowSpec,
        step: StepSpec,
        scope: dict[str, Any],
        job: ClaimedJob | None,
    ) -> dict[str, Any]:
        if step.condition:
            started = now()
            try:
                run = templating.evaluate(step.condition, scope)
            except TemplateError as exc:
                error = f"TemplateError: condition: {exc}"
                await self._record(run_id, step, "failed", None, None, error, started)
                raise StepFailed(error, retryable=False) from exc
            if not run:
                await self._record(run_id, step, "skipped", None, None, "condition is false", started)
                return {"output": None, "status": "skipped"}
        for attempt in range(1, step.max_attempts + 1):
            started = now()
            params: Any = None
            try:
                params = await self._render(step.params, scope)
                output = await self._call(run_id, workflow, step, params, scope, job)
                check_output_size(step, output)
            except Exception as exc:
                error, retryable, retry_after = classify(exc)
                await self._record(run_id, step, "failed", params, None, error, started, attempt)
                if retryable and attempt < step.max_attempts:
                    await asyncio.sleep(self._backoff(step, attempt, retry_after))
                    continue
                raise StepFailed(error, retryable, retry_after) from exc
            if output is _NOT_CALLED:
                await self._record(run_id, step, "skipped", params, None, _NOT_CALLED.reason(step), started)
                return {"output": None, "status": "skipped"}
            await self._record(run_id, step, "succeeded", params, output, "", started, attempt)
            return {"output": output, "status": "succeeded"}
        raise AssertionError("unreachable: a step has at least one attempt")  # pragma: no cover

    @staticmethod
    def _backoff(step: StepSpec, attempt: int, retry_after: float | None) -> float:
        """Seconds before the step's next attempt: exponential with jitter, at most a minute (the
        job keeps its slot meanwhile; longer waits belong to the workflow's job retry policy)."""
        ceiling = min(MAX_STEP_BACKOFF, step.backoff_seconds * 2 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0
        return max(delay, min(retry_after or 0.0, MAX_STEP_BACKOFF))

    async def _call(
        self,
        run_id: int,
        workflow: WorkflowSpec,
        step: StepSpec,
        params: Any,
        scope: dict[str, Any],
        job: ClaimedJob | None,
    ) -> Any:
        adapter = registry.connectors().get(step.connector)
        if self.dry_run and not getattr(adapter, "supports_dry_run", False):
            return _NOT_CALLED
        context = {
            "run_id": run_id,
            "workflow": workflow.name,
            "step": step.name,
            "event_id": scope["event"]["id"],
            "trace_id": scope["event"]["trace_id"],
            "attempt": job.spent if job else 1,
            "dry_run": self.dry_run,
        }
        timeout = step.timeout or float(settings.STEP_TIMEOUT_SECONDS)
        try:
            async with asyncio.timeout(timeout):
                return await adapter.aexecute(step.action, params, context)
        except TimeoutError as exc:
            raise ConnectorTimeout(f"The step did not finish within {timeout:g}s.") from exc

    async def _render(self, params: Any, scope: dict[str, Any]) -> Any:
        names = templating.collect_secret_names(params)
        if not names:
            return templating.render(params, scope)
        if self.dry_run:  # nothing leaves the machine: not even a read from a secrets backend
            resolved = {name: f"<secret {name}>" for name in names}
        else:
            from automate_governance.secrets.resolver import get_resolver

            resolver = get_resolver()
            resolved = {name: await resolver.aresolve(name) for name in sorted(names)}
        return templating.render(params, {**scope, "secret": templating.secret_function(resolved)})

    async def _record(
        self,
        run_id: int,
        step: StepSpec,
        status: str,
        params: Any,
        output: Any,
        error: str,
        started: datetime,
        attempt: int = 1,
    ) -> None:
        record = StepRecord(
            step.position, step.name, step.connector, step.action, status,
            params, output, error, started, now(), attempt,
        )  # fmt: skip
        metrics.steps_finished.labels(step.connector, status).inc()
        metrics.step_duration.labels(step.connector).observe(record.duration_ms / 1000.0)
        status = await self.journal.record_step(run_id, record)
        if status == "cancelled":
            raise Cancelled
        if status != "running":  # a new claim of the job abandoned this run: it carries on
            raise LeaseExpired(f"Run {run_id} was taken over by a new claim of its job ({status}).")


class _NotCalled:
    """The output of a step whose connector cannot run dry (test mode): it was not called."""

    @staticmethod
    def reason(step: StepSpec) -> str:
        return (
            f"not called: connector {step.connector!r} does not declare supports_dry_run, "
            f"so test mode shows the rendered input only"
        )


_NOT_CALLED: Any = _NotCalled()
