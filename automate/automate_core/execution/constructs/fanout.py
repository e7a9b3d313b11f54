"""What ``for_each`` and ``parallel`` share: run actions side by side, record each, join in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.rules.engine import StepSpec


async def join(
    walk: Walk, step: StepSpec, children: Sequence[tuple[StepSpec, str, dict[str, Any] | None]], limit: int
) -> dict[str, Any]:
    """Run ``children`` (spec, record name, item scope), at most ``limit`` at once; the step's
    output is their outputs in order. A failed child fails the step (after all have ended)
    unless the child step has ``continue_on_error`` (its output is then null)."""
    from automate_core.execution.runner import StepFailed, check_output_size, now

    started = now()
    gate = asyncio.Semaphore(max(1, limit))
    results: list[Any] = [None] * len(children)
    failures: list[tuple[int, StepFailed]] = []

    async def one(index: int, child: StepSpec, name: str, item: dict[str, Any] | None) -> None:
        async with gate:
            try:
                results[index] = (await walk.action(child, name=name, item=item))["output"]
            except StepFailed as failure:
                if not child.continue_on_error:
                    failures.append((index, failure))

    try:
        async with asyncio.TaskGroup() as group:
            for index, (child, name, item) in enumerate(children):
                group.create_task(one(index, child, name, item))
    except BaseExceptionGroup as group_error:  # Cancelled or LeaseExpired: stop the run as one would
        raise group_error.exceptions[0] from None
    if failures:
        failures.sort(key=lambda f: f[0])
        names = ", ".join(children[i][1] for i, _ in failures[:10])
        error = f"{len(failures)} of {len(children)} failed ({names}): {failures[0][1].error}"
        await walk.record(step, "failed", None, error, started=started)
        raise StepFailed(error, any(f.retryable for _, f in failures))
    try:
        check_output_size(step, results)
    except Exception as exc:
        await walk.record(step, "failed", None, str(exc), started=started)
        raise StepFailed(str(exc), retryable=False) from exc
    await walk.record(step, "succeeded", results, started=started)
    return {"output": results, "status": "succeeded"}
