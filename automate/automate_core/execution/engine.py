"""``ExecutionEngine``: runs the matched workflows of one event, step by step.

For each workflow an ``ExecutionRun`` is recorded; each step's parameters are rendered (sandboxed
Jinja2, see ``templating``), its connector is called (async connectors awaited, sync ones in the
plugin thread pool) under the step's timeout, and a ``StepRun`` records the rendered input, the
output or the error, and the timings. A failing step fails its run; the job outcome tells the
worker whether to retry (some failure was retryable and attempts are left) or give up.

On a retry, workflows that already succeeded for this event are not run again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from automate_core.conf import settings
from automate_core.exceptions import (
    AutomateError,
    ConnectorError,
    ConnectorTimeout,
    PluginError,
    SecretsError,
    TemplateError,
)
from automate_core.execution import templating
from automate_core.execution.journal import RunJournal, StepRecord
from automate_core.observability import metrics
from automate_core.outbox.retry import RetryPolicy
from automate_core.outbox.store import ClaimedEvent, ClaimedJob
from automate_core.plugins import registry
from automate_core.rules.engine import RuleEngine, StepSpec, WorkflowSpec

logger = logging.getLogger("automate.execution")


@dataclass(slots=True)
class RunOutcome:
    workflow: WorkflowSpec
    run_id: int
    succeeded: bool
    error: str = ""
    retryable: bool = False
    retry_after: float | None = None


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
    return RetryPolicy(
        max_attempts=workflow.max_attempts,
        base_seconds=float(settings.RETRY_BASE_SECONDS),
        max_seconds=float(settings.RETRY_MAX_SECONDS),
    )


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


class StepFailed(Exception):
    def __init__(self, error: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error, self.retryable, self.retry_after = error, retryable, retry_after


class ExecutionEngine:
    def __init__(self, rules: RuleEngine | None = None, journal: RunJournal | None = None) -> None:
        self.rules = rules or RuleEngine()
        self.journal = journal or RunJournal()

    async def handle_event(self, job: ClaimedJob) -> JobOutcome:
        event = job.event
        if event is None:
            return JobOutcome(False, error="The job has no event.")
        await self.rules.refresh(job.generation)
        workflows = self.rules.match(event.source, event.event_type)
        if not workflows:
            return JobOutcome(True)
        done = await self.journal.succeeded_workflows(event.id) if job.attempts > 1 else set()
        outcome = JobOutcome(True)
        for workflow in workflows:
            if workflow.id in done:
                continue
            run = await self.run_workflow(workflow, event, job)
            outcome.runs.append(run)
            if not run.succeeded:
                outcome.succeeded = False
                outcome.error = f"{workflow.name}: {run.error}"
                outcome.retryable = outcome.retryable or run.retryable
                policy = workflow_policy(workflow)
                if outcome.retry_policy is None or policy.max_attempts > outcome.retry_policy.max_attempts:
                    outcome.retry_policy = policy
                if run.retry_after is not None:
                    outcome.retry_after = max(outcome.retry_after or 0.0, run.retry_after)
        return outcome

    async def run_workflow(
        self, workflow: WorkflowSpec, event: ClaimedEvent, job: ClaimedJob | None
    ) -> RunOutcome:
        run_id = await self.journal.start_run(
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            event_id=event.id,
            job_id=job.id if job else None,
            attempt=job.attempts if job else 1,
            trace_id=event.trace_id,
        )
        scope: dict[str, Any] = {"event": event_context(event), "steps": {}}
        for step in workflow.steps:
            try:
                output = await self._run_step(run_id, workflow, step, scope, job)
            except StepFailed as failure:
                await self.journal.finish_run(run_id, "failed", f"step {step.name}: {failure.error}")
                metrics.runs_finished.labels(workflow.name, "failed").inc()
                return RunOutcome(
                    workflow, run_id, False, f"step {step.name}: {failure.error}",
                    failure.retryable, failure.retry_after,
                )  # fmt: skip
            scope["steps"][step.name] = {"output": output}
        await self.journal.finish_run(run_id, "succeeded")
        metrics.runs_finished.labels(workflow.name, "succeeded").inc()
        return RunOutcome(workflow, run_id, True)

    async def _run_step(
        self,
        run_id: int,
        workflow: WorkflowSpec,
        step: StepSpec,
        scope: dict[str, Any],
        job: ClaimedJob | None,
    ) -> Any:
        started = now()
        params: Any = None
        try:
            params = await self._render(step.params, scope)
            adapter = registry.connectors().get(step.connector)
            context = {
                "run_id": run_id,
                "workflow": workflow.name,
                "step": step.name,
                "event_id": scope["event"]["id"],
                "trace_id": scope["event"]["trace_id"],
                "attempt": job.attempts if job else 1,
                "dry_run": False,
            }
            timeout = step.timeout or float(settings.STEP_TIMEOUT_SECONDS)
            try:
                async with asyncio.timeout(timeout):
                    output = await adapter.aexecute(step.action, params, context)
            except TimeoutError as exc:
                raise ConnectorTimeout(f"The step did not finish within {timeout:g}s.") from exc
        except Exception as exc:
            error, retryable, retry_after = self._classify(exc)
            await self._record(run_id, step, "failed", params, None, error, started)
            raise StepFailed(error, retryable, retry_after) from exc
        await self._record(run_id, step, "succeeded", params, output, "", started)
        return output

    async def _render(self, params: Any, scope: dict[str, Any]) -> Any:
        from automate_governance.secrets.resolver import get_resolver

        resolver = get_resolver()
        names = templating.collect_secret_names(params)
        resolved = {name: await resolver.aresolve(name) for name in sorted(names)}
        context = {**scope, "secret": templating.secret_function(resolved)}
        return templating.render(params, context)

    @staticmethod
    def _classify(exc: BaseException) -> tuple[str, bool, float | None]:
        if isinstance(exc, ConnectorError):
            return f"{type(exc).__name__}: {exc}", exc.retryable, exc.retry_after
        if isinstance(exc, (TemplateError, PluginError)):
            return f"{type(exc).__name__}: {exc}", False, None
        if isinstance(exc, SecretsError):
            return f"{type(exc).__name__}: {exc}", True, None
        if isinstance(exc, AutomateError):
            return f"{type(exc).__name__}: {exc}", True, None
        # anything else escaping a plugin is wrapped, not swallowed
        return f"ConnectorError: unexpected {type(exc).__name__}: {exc}", True, None

    async def _record(
        self,
        run_id: int,
        step: StepSpec,
        status: str,
        params: Any,
        output: Any,
        error: str,
        started: datetime,
    ) -> None:
        record = StepRecord(
            step.position, step.name, step.connector, step.action, status,
            params, output, error, started, now(),
        )  # fmt: skip
        metrics.steps_finished.labels(step.connector, status).inc()
        metrics.step_duration.labels(step.connector).observe(record.duration_ms / 1000.0)
        await self.journal.record_step(run_id, record)
