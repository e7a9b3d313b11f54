"""``OutboxStore``: the outbox's transitions on async psycopg. ``psycopg`` errors stop here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from automate_core import db
from automate_core.exceptions import DatabaseUnavailable
from automate_core.outbox import queries


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: int
    source: str
    event_type: str
    payload: Any
    headers: dict[str, Any]
    trace_id: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    attempts: int
    max_attempts: int
    payload: Any
    event: ClaimedEvent | None
    generation: int

    @property
    def claim(self) -> tuple[int, int]:
        """The fencing token: this job at this attempt."""
        return self.id, self.attempts


def _claims(jobs: Sequence[ClaimedJob]) -> dict[str, list[int]]:
    return {"ids": [j.id for j in jobs], "attempts": [j.attempts for j in jobs]}


class OutboxStore:
    async def _execute(self, query: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        pool = await db.get_pool()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(query, params)
                rows: list[tuple[Any, ...]] = await cur.fetchall()
                return rows
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            db.recheck_soon(pool)
            raise DatabaseUnavailable(f"Outbox query failed: {exc}") from exc
        except TimeoutError as exc:
            raise DatabaseUnavailable("No database connection became free in time.") from exc

    async def claim_batch(self, limit: int, owner: str = "", lease: float = 30.0) -> list[ClaimedJob]:
        """Claim up to ``limit`` ready jobs (``SELECT ... FOR UPDATE SKIP LOCKED``)."""
        if limit <= 0:
            return []
        rows = await self._execute(queries.CLAIM_BATCH, {"limit": limit, "owner": owner, "lease": lease})
        jobs = []
        for row in rows:
            (job_id, kind, attempts, max_attempts, payload, event_id, source, event_type,
             event_payload, headers, trace_id, received_at, generation) = row  # fmt: skip
            event = None
            if event_id is not None:
                event = ClaimedEvent(
                    event_id,
                    source,
                    event_type,
                    event_payload,
                    headers or {},
                    trace_id,
                    received_at,
                )
            jobs.append(ClaimedJob(job_id, kind, attempts, max_attempts, payload, event, int(generation)))
        return jobs

    async def complete(self, jobs: Sequence[ClaimedJob]) -> set[int]:
        """Mark claims completed; returns the ids that were still held (others were rescued)."""
        if not jobs:
            return set()
        rows = await self._execute(queries.COMPLETE, _claims(jobs))
        return {r[0] for r in rows}

    async def fail(self, job: ClaimedJob, *, error: str, delay: float, dead: bool, max_attempts: int) -> bool:
        rows = await self._execute(
            queries.FAIL,
            {
                "id": job.id,
                "attempts": job.attempts,
                "status": "dead" if dead else "retry",
                "delay": 0.0 if dead else delay,
                "error": error[:10_000],
                "max_attempts": max_attempts,
            },
        )
        return bool(rows)

    async def snooze(self, job: ClaimedJob, delay: float) -> bool:
        rows = await self._execute(queries.SNOOZE, {"id": job.id, "attempts": job.attempts, "delay": delay})
        return bool(rows)

    async def release(self, jobs: Sequence[ClaimedJob]) -> set[int]:
        if not jobs:
            return set()
        rows = await self._execute(queries.RELEASE, _claims(jobs))
        return {r[0] for r in rows}

    async def heartbeat(self, jobs: Sequence[ClaimedJob], lease: float) -> set[int]:
        if not jobs:
            return set()
        rows = await self._execute(queries.HEARTBEAT, {**_claims(jobs), "lease": lease})
        return {r[0] for r in rows}

    async def rescue_expired(self, limit: int = 500) -> list[tuple[int, str]]:
        rows = await self._execute(queries.RESCUE_EXPIRED, {"limit": limit})
        return [(r[0], r[1]) for r in rows]

    async def generation(self) -> int:
        rows = await self._execute(queries.GENERATION, {})
        return int(rows[0][0])


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
