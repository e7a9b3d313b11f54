"""Per-workflow concurrency limits, enforced in PostgreSQL so that they hold across processes.

A workflow with ``concurrency: {limit: N, key: "{{ event.payload.customer }}"}`` runs at most N
runs at once per rendered key. Each run holds a slot row (``automate_concurrency_slot``) tied to
its job's claim (job id and attempt). The slot is released when the run ends; when the worker
dies instead, the slot frees itself as soon as the job's lease expires, because a slot only
counts while its holder's claim is live (see ``queries.ACQUIRE_SLOT``). A job that finds the
limit full is snoozed: put back for a moment without spending an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from automate_core import db
from automate_core.execution import queries

MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Slot:
    workflow_id: int
    key: str
    slot: int
    job_id: int
    attempt: int


class ConcurrencySlots:
    async def acquire(self, workflow_id: int, key: str, limit: int, job_id: int, attempt: int) -> Slot | None:
        """A slot for this claim, or None when all ``limit`` slots of ``key`` are held."""
        key = key[:MAX_KEY_LENGTH]
        params = {
            "workflow_id": workflow_id,
            "key": key,
            "limit": limit,
            "job_id": job_id,
            "attempt": attempt,
        }
        pool = await db.get_pool()
        async with pool.connection() as conn:
            for _ in range(min(limit, 3)):  # a lost race for one free slot may leave another free
                cur = await conn.execute(queries.ACQUIRE_SLOT, params)
                row = await cur.fetchone()
                if row is not None:
                    return Slot(workflow_id, key, int(row[0]), job_id, attempt)
        return None

    async def release(self, slot: Slot) -> None:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            await conn.execute(
                queries.RELEASE_SLOT,
                {
                    "workflow_id": slot.workflow_id,
                    "key": slot.key,
                    "slot": slot.slot,
                    "job_id": slot.job_id,
                    "attempt": slot.attempt,
                },
            )
