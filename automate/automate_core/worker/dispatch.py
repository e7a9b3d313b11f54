"""``Dispatcher``: runs one claimed job and decides what the outbox should record for it.

* ``event`` jobs go to the ``ExecutionEngine``, ``task`` jobs (Django's tasks framework) to
  ``automate_core.tasks.runner``. Both answer with a ``JobOutcome``.
* The outcome becomes a ``Settlement``: complete; retry after the backoff of the retry policy
  (the workflow's, else the job's own ``max_attempts`` with the platform's backoff); dead when the
  failure is not retryable or the attempts are spent; or release (a snooze: back later, the
  attempt not spent).
* A database outage in the middle of a job is not the job's fault: it is released (not spent)
  and runs again once the database answers. So is a takeover that could not get the row lock of
  the run its earlier claim left running within ``AUTOMATE_DB_TAKEOVER_LOCK_TIMEOUT``: released,
  to try again later, without holding a pooled connection meanwhile. Any other unexpected error
  is a retryable failure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from automate_core import context
from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable
from automate_core.execution.engine import ExecutionEngine, JobOutcome
from automate_core.observability import tracing
from automate_core.outbox.retry import RetryPolicy
from automate_core.outbox.store import ClaimedJob
from automate_core.tasks import runner
from automate_core.worker.settle import Settlement

logger = logging.getLogger("automate.worker")

#: Seconds a job interrupted by a database outage waits before it is claimable again.
OUTAGE_DELAY = 1.0


class Dispatcher:
    def __init__(self, engine: ExecutionEngine | None = None, worker_id: str = "") -> None:
        self.engine = engine or ExecutionEngine()
        self.worker_id = worker_id

    async def execute(self, job: ClaimedJob) -> Settlement:
        """Run ``job`` and return what to record. Only cancellation escapes."""
        token = context.trace_id.set(job.event.trace_id if job.event else "")
        ids = context.log_fields.set({"job_id": job.id, **({"event_id": job.event.id} if job.event else {})})
        try:  # the trace id and the ids stay set for the decision too: its log lines belong to the event
            try:
                outcome, result = await self.run(job)
            except asyncio.CancelledError:
                raise
            except psycopg.errors.LockNotAvailable as exc:  # a takeover waited its lock timeout
                delay = float(settings.DB_TAKEOVER_LOCK_TIMEOUT)
                logger.warning(
                    "job %s: a row it must take over is still locked by another session (a worker "
                    "frozen mid-transaction?); handed back to try again in %.1fs (%s)",
                    job.id, delay, exc,
                )  # fmt: skip
                return Settlement(job, "release", delay=delay)
            except (DatabaseUnavailable, psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
                logger.warning("job %s interrupted by a database outage (%s); it runs again", job.id, exc)
                return Settlement(job, "release", delay=OUTAGE_DELAY)
            except Exception as exc:
                logger.exception("job %s: unexpected error in the worker", job.id)
                error = f"{type(exc).__name__}: {exc}"
                outcome, result = JobOutcome(False, retryable=True, error=error), None
            return self.decide(job, outcome, result)
        finally:
            context.log_fields.reset(ids)
            context.trace_id.reset(token)

    async def run(self, job: ClaimedJob) -> tuple[JobOutcome, Any]:
        """The job's outcome, and a result to store with it (Django tasks only), in a span of its own
        (OpenTelemetry's messaging conventions: the outbox job is the message, processed)."""
        attributes: dict[str, Any] = {
            "messaging.system": "django_automate",
            "messaging.operation.type": "process",
            "messaging.destination.name": "automate_outbox",
            "messaging.message.id": str(job.id),
            "automate.job.kind": job.kind,
            "automate.job.attempt": job.attempts,
        }
        with tracing.span(f"process {job.kind} job", span_kind="CONSUMER", **attributes):
            return await self._run(job)

    async def _run(self, job: ClaimedJob) -> tuple[JobOutcome, Any]:
        if job.kind == "event":
            return await self.engine.handle_event(job), None
        if job.kind == "task":
            return await runner.run_task(job, self.worker_id)
        return JobOutcome(False, error=f"Unknown job kind {job.kind!r}; no worker can run it."), None

    def decide(self, job: ClaimedJob, outcome: JobOutcome, result: Any = None) -> Settlement:
        if outcome.succeeded:
            return Settlement(job, "complete", result=result)
        if outcome.snooze is not None:
            return Settlement(job, "release", delay=outcome.snooze)
        policy = outcome.retry_policy or RetryPolicy(
            max_attempts=job.max_attempts,
            base_seconds=float(settings.RETRY_BASE_SECONDS),
            max_seconds=float(settings.RETRY_MAX_SECONDS),
        )
        spent = job.spent
        if not outcome.retryable or policy.exhausted(spent):
            logger.error("job %s is dead after attempt %d: %s", job.id, spent, outcome.error)
            return Settlement(
                job, "dead", error=outcome.error, max_attempts=policy.max_attempts, result=result
            )
        delay = policy.delay(spent, outcome.retry_after)
        logger.warning(
            "job %s failed (attempt %d of %d), retrying in %.1fs: %s",
            job.id, spent, policy.max_attempts, delay, outcome.error,
        )  # fmt: skip
        return Settlement(
            job, "retry", delay=delay, error=outcome.error, max_attempts=policy.max_attempts, result=result
        )


class NoopDispatcher(Dispatcher):
    """Completes every job without running it: the worker's own cost, for ``automate bench``."""

    def __init__(self) -> None:
        super().__init__(engine=None)

    async def execute(self, job: ClaimedJob) -> Settlement:
        return Settlement(job, "complete")
