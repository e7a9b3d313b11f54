"""Action steps: a connector call with its condition, rendered parameters, retries and record.

For each action step, in order: its ``condition`` decides whether it runs (false: recorded as skipped);
its parameters are rendered (sandboxed Jinja2, ``templating``) with ``secret("NAME")`` resolved
just before; its connector is called under the step's timeout; a retryable failure is tried
again up to the step's ``retry.max_attempts`` with backoff (each attempt recorded); an output
larger than ``AUTOMATE_STEP_OUTPUT_MAX_BYTES`` fails the step. A failed step fails the run unless
it has ``continue_on_error``. Later steps see ``steps.<name>.output`` (and ``.status``).

A plan may carry outputs to *reuse*: a resume (replay, or a job's retry) records the steps that
already succeeded as ``reused`` with their recorded output and calls nothing for them.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime
from typing import Any

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
from automate_core.observability import metrics, tracing
from automate_core.outbox.store import ClaimedJob
from automate_core.plugins import registry
from automate_core.rules.engine import StepSpec, WorkflowSpec

MAX_STEP_BACKOFF = 60.0


class StepFailed(Exception):
    def __init__(self, error: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error, self.retryable, self.retry_after = error, retryable, retry_after


class Cancelled(Exception):
    """The run was cancelled while a step ran; stop before the next one."""


def now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


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


class ActionSteps:
    """The action-step half of the interpreter (``runner.WorkflowRunner``)."""

    journal: RunJournal
    dry_run: bool

    async def _run_step(
        self,
        run_id: int,
        workflow: WorkflowSpec,
        step: StepSpec,
        scope: dict[str, Any],
        job: ClaimedJob | None,
        *,
        name: str | None = None,
        hold: list[StepRecord] | None = None,
    ) -> dict[str, Any]:
        """Run one action step in a span of its own (its connector and action as attributes).

        With ``hold`` (the run's last step: nothing but the run's end comes after it), the step's
        final record is put there instead of written: the run's end writes it (``close_run``)."""
        attributes: dict[str, Any] = {
            "automate.step": name or step.name,
            "automate.connector": step.connector,
            "automate.action": step.action,
            "automate.run.id": run_id,
        }
        with tracing.span(f"step {name or step.name}", **attributes) as span:
            result = await self._run_step_inner(run_id, workflow, step, scope, job, name=name, hold=hold)
            if span is not None:
                span.set_attribute("automate.step.status", str(result.get("status")))
            return result

    async def _run_step_inner(
        self,
        run_id: int,
        workflow: WorkflowSpec,
        step: StepSpec,
        scope: dict[str, Any],
        job: ClaimedJob | None,
        *,
        name: str | None = None,
        hold: list[StepRecord] | None = None,
    ) -> dict[str, Any]:
        record = self._recorder(run_id, step, name, hold)
        if step.condition:
            started = now()
            try:
                run = templating.evaluate(step.condition, scope)
            except TemplateError as exc:
                error = f"TemplateError: condition: {exc}"
                await record("failed", None, None, error, started)
                raise StepFailed(error, retryable=False) from exc
            if not run:
                await record("skipped", None, None, "condition is false", started)
                return {"output": None, "status": "skipped"}
        for attempt in range(1, step.max_attempts + 1):
            started = now()
            params: Any = None
            try:
                params = await self._render(step.params, scope, workflow)
                output = await self._call(run_id, workflow, step, params, scope, job, name)
                check_output_size(step, output)
            except Exception as exc:
                error, retryable, retry_after = classify(exc)
                again = retryable and attempt < step.max_attempts
                await record("failed", params, None, error, started, attempt, final=not again)
                if again:
                    await asyncio.sleep(self._backoff(step, attempt, retry_after))
                    continue
                raise StepFailed(error, retryable, retry_after) from exc
            if output is _NOT_CALLED:
                await record("skipped", params, None, _NOT_CALLED.reason(step), started)
                return {"output": None, "status": "skipped"}
            await record("succeeded", params, output, "", started, attempt)
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
        name: str | None = None,
    ) -> Any:
        adapter = registry.connectors().get(step.connector)
        if self.dry_run and not getattr(adapter, "supports_dry_run", False):
            return _NOT_CALLED
        context = {
            "run_id": run_id,
            "workflow": workflow.name,
            "step": name or step.name,
            "event_id": scope["event"]["id"],
            "trace_id": scope["event"]["trace_id"],
            "attempt": job.spent if job else 1,
            "dry_run": self.dry_run,
        }
        if "item_index" in scope:  # a for_each item: its index keeps idempotency keys apart
            context["item"] = scope["item_index"]
        timeout = step.timeout or float(settings.STEP_TIMEOUT_SECONDS)
        try:
            async with asyncio.timeout(timeout):
                return await adapter.aexecute(step.action, params, context)
        except TimeoutError as exc:
            raise ConnectorTimeout(f"The step did not finish within {timeout:g}s.") from exc

    async def _render(self, params: Any, scope: dict[str, Any], workflow: WorkflowSpec) -> Any:
        names = _secret_names(params)
        if not names:
            return await templating.arender(params, scope)
        if self.dry_run:  # nothing leaves the machine: not even a read from a secrets backend
            resolved = {name: f"<secret {name}>" for name in names}
        else:  # only the workflow's declared secrets, never a webhook signing key
            from automate_governance.secrets.scope import resolve_for_template

            resolved = await resolve_for_template(names, workflow.secrets, workflow=workflow.name)
        return await templating.arender(params, {**scope, "secret": templating.secret_function(resolved)})

    def _recorder(self, run_id: int, step: StepSpec, name: str | None, hold: list[StepRecord] | None) -> Any:
        async def record(
            status: str, params: Any, output: Any, error: str, started: datetime, attempt: int = 1,
            *, final: bool = True,
        ) -> None:  # fmt: skip
            held = hold if final else None  # an attempt retried after a backoff is written at once
            await self.record(
                run_id, step, status, params, output, error, started, attempt, name=name, hold=held
            )

        return record

    async def record(
        self,
        run_id: int,
        step: StepSpec,
        status: str,
        params: Any,
        output: Any,
        error: str,
        started: datetime,
        attempt: int = 1,
        *,
        name: str | None = None,
        hold: list[StepRecord] | None = None,
    ) -> None:
        """Write one step record (or put it in ``hold``, for the run's end to write); raises
        Cancelled or LeaseExpired when the run must stop."""
        record = StepRecord(
            step.position, name or step.name, step.connector, step.action, status,
            params, output, error, started, now(), attempt,
        )  # fmt: skip
        metrics.child(metrics.steps_finished, step.connector, status).inc()
        metrics.child(metrics.step_duration, step.connector).observe(record.duration_ms / 1000.0)
        if hold is not None:
            hold.append(record)
            return
        status = await self.journal.record_step(run_id, record)
        if status == "cancelled":
            raise Cancelled
        if status != "running":  # a new claim of the job abandoned this run: it carries on
            raise LeaseExpired(f"Run {run_id} was taken over by a new claim of its job ({status}).")


_SECRET_NAMES: dict[int, tuple[Any, frozenset[str]]] = {}


def _secret_names(params: Any) -> frozenset[str]:
    """The secrets a step's parameters name, kept by the parameters' identity: a step's are those
    of its workflow version's spec, immutable and cached for good (``RuleEngine.version``), so
    they are walked once, not at every run. The entry holds the object, so its id is not reused."""
    found = _SECRET_NAMES.get(id(params))
    if found is not None and found[0] is params:
        return found[1]
    names = frozenset(templating.collect_secret_names(params))
    if len(_SECRET_NAMES) < 10_000:
        _SECRET_NAMES[id(params)] = (params, names)
    return names


class _NotCalled:
    """The output of a step whose connector cannot run dry (test mode): it was not called."""

    @staticmethod
    def reason(step: StepSpec) -> str:
        return (
            f"not called: connector {step.connector!r} does not declare supports_dry_run, "
            f"so test mode shows the rendered input only"
        )


_NOT_CALLED: Any = _NotCalled()
