"""Runs the controls record themselves: a skipped run with its reason."""

from __future__ import annotations

from typing import Any

from automate_core import db, masking
from automate_core.execution.controls import queries
from automate_core.execution.runner import Plan
from automate_core.observability import metrics
from automate_core.outbox.store import ClaimedJob


async def record_skipped(plan: Plan, context: dict[str, Any], job: ClaimedJob, reason: str) -> None:
    """The plan's run ends ``skipped`` with ``reason``: a new run record, or its queued run."""
    workflow = plan.workflow
    reason = masking.masker.mask(reason)
    pool = await db.get_pool()
    async with pool.connection() as conn:
        if plan.run_id is not None and plan.queued:
            await conn.execute(
                queries.SKIP_QUEUED_RUN, {"run_id": plan.run_id, "reason": reason, "attempt": job.spent}
            )
        else:
            event = context["event"]
            await conn.execute(
                queries.SKIP_RUN,
                {
                    "workflow_id": workflow.id,
                    "workflow_name": workflow.name,
                    "version_id": workflow.version_id,
                    "event_id": event["id"],
                    "job_id": job.id,
                    "claim": job.attempts,
                    "attempt": job.spent,
                    "reason": reason,
                    "trace_id": event["trace_id"],
                },
            )
    metrics.runs_finished.labels(workflow.name, "skipped").inc()
