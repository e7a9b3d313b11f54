"""How a durable construct parks the run: record the step ``waiting``, open the wait, stop.

Shared by sleep, wait_for_event, approval and call. In test mode nothing parks: the step is
recorded ``skipped`` with what it would wait for, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from automate_core.exceptions import LeaseExpired, TemplateError
from automate_core.execution.waits import Opening, waits

if TYPE_CHECKING:
    from automate_core.execution.constructs.base import Durable
    from automate_core.execution.runner import Walk
    from automate_core.rules.engine import StepSpec

#: ``opening(walk, step)`` -> (the wait to open, or None to go on at once with ``output``; what it
#: waits for, in words; the output when it does not wait)
Opener = Callable[["Walk", "StepSpec"], Awaitable[tuple[Opening | None, str, Any]]]


async def park(walk: Walk, step: StepSpec, construct: Durable, opening: Opener) -> dict[str, Any]:
    from automate_core.execution.runner import StepFailed, Suspended

    earlier = walk.waits.get(step.name)
    if earlier is not None and earlier.final:  # woken: its outcome was recorded as it woke
        status, output, error = construct.outcome(step, earlier)
        if status == "failed":
            raise StepFailed(error, retryable=False)
        return {"output": output, "status": status}
    try:
        wanted, description, output = await opening(walk, step)
    except (TemplateError, StepFailed) as exc:
        error = exc.error if isinstance(exc, StepFailed) else f"TemplateError: {exc}"
        await walk.record(step, "failed", None, error)
        raise StepFailed(error, retryable=False) from exc
    if walk.dry_run:
        await walk.record(step, "skipped", {"would_wait": description}, f"test mode: {description}")
        return {"output": None, "status": "skipped"}
    if wanted is None:  # nothing to wait for (a moment already past, an event seen in the look-back)
        await walk.record(step, "succeeded", output)
        return {"output": output, "status": "succeeded"}
    until = wanted.deadline.isoformat() if wanted.deadline else None
    await walk.record(step, "waiting", {"waits": description, "until": until})
    attempts = walk.plan.workflow.max_attempts
    if wanted.call is not None:
        try:
            opened = await waits.open_call(
                walk.run_id, step.name, walk.job, wanted, max_attempts=attempts, workflow=wanted.call[0],
                event_id=walk.event.id, trace_id=walk.event.trace_id, input=wanted.call[1],
            )  # fmt: skip
        except LookupError as exc:
            error = f"workflow {wanted.call[0]!r} does not exist or has no published version"
            await walk.record(step, "failed", None, error)
            raise StepFailed(error, retryable=False) from exc
    else:
        opened = await waits.open(walk.run_id, step.name, walk.job, wanted, max_attempts=attempts)
    if opened is None:
        raise LeaseExpired(f"Run {walk.run_id} is no longer running under this claim; it did not park.")
    raise Suspended(description)
