"""``Dispatcher``: runs one claimed job and applies its outcome to the outbox."""

from __future__ import annotations

import logging

from automate_core import context
from automate_core.conf import settings
from automate_core.execution.engine import ExecutionEngine, JobOutcome
from automate_core.observability import metrics
from automate_core.outbox.retry import RetryPolicy
from automate_core.outbox.store import ClaimedJob, OutboxStore

logger = logging.getLogger("automate.worker")


class Dispatcher:
    def __init__(self, store: OutboxStore, engine: ExecutionEngine | None = None) -> None:
        self.store = store
        self.engine = engine or ExecutionEngine()

    async def run(self, job: ClaimedJob) -> None:
        token = context.trace_id.set(job.event.trace_id if job.event else "")
        try:
            outcome = await self.execute(job)
            await self.settle(job, outcome)
        finally:
            context.trace_id.reset(token)

    async def execute(self, job: ClaimedJob) -> JobOutcome:
        if job.kind == "event":
            return await self.engine.handle_event(job)
        return JobOutcome(False, error=f"Unknown job kind {job.kind!r}.")

    async def settle(self, job: ClaimedJob, outcome: JobOutcome) -> None:
        if outcome.succeeded:
            held = await self.store.complete([job])
            if held:
                metrics.jobs_completed.inc()
            else:
                logger.warning("job %s finished after its lease was taken over", job.id)
            return
        if outcome.snooze is not None:
            await self.store.snooze(job, outcome.snooze)
            return
        policy = outcome.retry_policy or RetryPolicy(
            max_attempts=job.max_attempts,
            base_seconds=float(settings.RETRY_BASE_SECONDS),
            max_seconds=float(settings.RETRY_MAX_SECONDS),
        )
        max_attempts = policy.max_attempts
        dead = not outcome.retryable or policy.exhausted(job.attempts)
        delay = policy.delay(job.attempts, outcome.retry_after)
        await self.store.fail(job, error=outcome.error, delay=delay, dead=dead, max_attempts=max_attempts)
        (metrics.jobs_dead if dead else metrics.jobs_retried).inc()
        if dead:
            logger.error("job %s is dead after attempt %d: %s", job.id, job.attempts, outcome.error)
        else:
            logger.warning(
                "job %s failed (attempt %d of %d), retrying in %.1fs: %s",
                job.id, job.attempts, max_attempts, delay, outcome.error,
            )  # fmt: skip
