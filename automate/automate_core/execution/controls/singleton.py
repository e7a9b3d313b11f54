"""``singleton: {key: ..., mode: queue|skip|cancel}``: one run at a time per key.

The lock is slot -1 of the workflow's concurrency slots (``automate_concurrency_slot``), tied to
its holder's claim (job id and attempt) like any slot: it counts only while that job is
``running`` at that attempt with an unexpired lease, so a killed worker's lock frees itself when
its lease expires, and the engine releases it when the job's runs end. A newer event that finds
the lock held:

* ``queue``: waits its turn: its job is snoozed (put back without spending an attempt), holding
  no worker, and takes the lock once it is free;
* ``skip``: is recorded as a ``skipped`` run that names the run holding the key;
* ``cancel``: cancels the run in progress (it ends ``cancelled`` with a reason naming the newer
  event, and stops before its next step, as any cancelled run), then waits for the lock as in
  ``queue``: the older run's current step is the only thing still running.
"""

from __future__ import annotations

from dataclasses import dataclass

from automate_core import db
from automate_core.execution import wait_queries
from automate_core.execution.concurrency import Slot
from automate_core.execution.controls import queries

LOCK_SLOT = -1


@dataclass(frozen=True, slots=True)
class Holder:
    job_id: int | None
    run_id: int | None
    event_id: int | None


async def acquire(workflow_id: int, key: str, job_id: int, attempt: int) -> Slot | None:
    """The key's lock for this claim, or None when a live claim holds it."""
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            queries.SINGLETON_LOCK,
            {"workflow_id": workflow_id, "key": key, "job_id": job_id, "attempt": attempt},
        )
        row = await cur.fetchone()
    return Slot(workflow_id, key, LOCK_SLOT, job_id, attempt) if row is not None else None


async def holder(workflow_id: int, key: str) -> Holder:
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(queries.SINGLETON_HOLDER, {"workflow_id": workflow_id, "key": key})
        row = await cur.fetchone()
    return Holder(*row) if row is not None else Holder(None, None, None)


async def cancel(run_id: int, reason: str) -> bool:
    """End the older run ``cancelled`` with ``reason``; False when it had ended already."""
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(queries.CANCEL_RUN, {"run_id": run_id, "reason": reason})
        cancelled = await cur.fetchone() is not None
        if cancelled:  # a run holding the lock is running, not waiting; close any wait all the same
            await conn.execute(wait_queries.CANCEL_WAITS, {"run_id": run_id, "by": "singleton"})
    return cancelled
