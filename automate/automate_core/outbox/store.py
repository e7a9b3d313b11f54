"""``OutboxStore``: the outbox's transitions on async psycopg. ``psycopg`` errors stop here.

Each method is one statement (one round trip, one commit) for a whole batch of claims; see
``queries`` for what each transition expects. Methods that settle claims return the ids whose
claim still held: the others were taken over after their lease expired, and nothing was written.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

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
    attempts: int  # claims so far, this one included: the claim's fencing token
    max_attempts: int
    payload: Any
    event: ClaimedEvent | None
    generation: int
    releases: int = 0  # earlier claims handed back unspent
    result: Any = None  # a Django task's result so far (errors and workers of earlier attempts)
    queue: str = "default"  # the queue it was claimed from (a run it parks wakes on the same)
    run_id: int | None = None  # an event job's first new run in this attempt takes this id
    #: Until when (``time.monotonic()``) no other worker can have taken this claim over: its lease
    #: counted from before the claim was sent (the database counts from later). 0: unknown.
    fresh_until: float = 0.0

    @property
    def fresh(self) -> bool:
        """Whether the claim is certainly still this worker's (its first lease cannot have run out)."""
        return time.monotonic() < self.fresh_until

    @property
    def claim(self) -> tuple[int, int]:
        """The fencing token: this job at this attempt."""
        return self.id, self.attempts

    @property
    def spent(self) -> int:
        """Attempts spent, this one included (claims handed back unspent do not count)."""
        return self.attempts - self.releases


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt: retry after ``delay`` seconds, or dead."""

    job: ClaimedJob
    error: str
    dead: bool
    delay: float = 0.0
    max_attempts: int | None = None
    result: Any = None


def _claims(jobs: Sequence[ClaimedJob]) -> dict[str, list[int]]:
    return {"ids": [j.id for j in jobs], "attempts": [j.attempts for j in jobs]}


def _json(value: Any) -> str | None:
    return None if value is None else dumps(value)


def dumps(value: Any) -> str:
    return json.dumps(text_safe(value), default=str)


def text_safe(value: Any) -> Any:
    """``value`` with NUL characters replaced (U+FFFD): PostgreSQL stores no NUL in text or jsonb.

    Error messages and tracebacks come from remote services and user code; one NUL must not make
    the whole batch of settlements fail.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {text_safe(k): text_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [text_safe(v) for v in value]
    return value


@contextlib.asynccontextmanager
async def _connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; an outage or a full pool becomes ``DatabaseUnavailable``."""
    pool = await db.get_pool()
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
        db.recheck_soon(pool)
        raise DatabaseUnavailable(f"Outbox query failed: {exc}") from exc
    except TimeoutError as exc:
        raise DatabaseUnavailable("No database connection became free in time.") from exc


class OutboxStore:
    async def _execute(self, query: LiteralString, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with _connection() as conn:
            cur = await conn.execute(query, params)
            rows: list[tuple[Any, ...]] = await cur.fetchall()
            return rows

    async def _claim(
        self, query: LiteralString, params: dict[str, Any]
    ) -> tuple[list[tuple[Any, ...]], dict[int, ClaimedEvent]]:
        """The claim's rows, then the claimed jobs' events by id (``queries.CLAIMED_EVENTS``), on
        one connection."""
        async with _connection() as conn:
            rows: list[tuple[Any, ...]] = await (await conn.execute(query, params)).fetchall()
            ids = sorted({row[7] for row in rows if row[7] is not None})
            if not ids:
                return rows, {}
            # never prepared: planned with the ids, so only their partitions are read
            cur = await conn.execute(queries.CLAIMED_EVENTS, {"ids": ids}, prepare=False)
            found = await cur.fetchall()
        events = {}
        for event_id, source, event_type, payload, headers, trace_id, received_at in found:
            events[event_id] = ClaimedEvent(
                event_id, source, event_type, payload, headers or {}, trace_id, received_at
            )
        return rows, events

    async def claim_batch(
        self, limit: int, owner: str, lease: float = 30.0, queues: Sequence[str] | None = None
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` ready jobs for ``owner`` (``SELECT ... FOR UPDATE SKIP LOCKED``), in
        claim order, from ``queues`` (None or empty: every queue)."""
        if limit <= 0:
            return []
        params: dict[str, Any] = {"limit": limit, "owner": owner, "lease": lease}
        query = queries.CLAIM_BATCH
        if queues and len(queues) == 1:
            query, params["queue"] = queries.CLAIM_BATCH_QUEUE, queues[0]
        elif queues:
            query, params["queues"] = queries.CLAIM_BATCH_QUEUES, list(queues)
        sent = time.monotonic()
        rows, events = await self._claim(query, params)
        jobs = []
        for row in rows:
            (job_id, kind, attempts, releases, max_attempts, payload, result, event_id, generation,
             queue, run_id) = row  # fmt: skip
            jobs.append(
                ClaimedJob(
                    job_id,
                    kind,
                    attempts,
                    max_attempts,
                    payload,
                    None if event_id is None else events.get(event_id),
                    int(generation),
                    releases,
                    result,
                    queue,
                    run_id,
                    sent + lease,
                )
            )
        return jobs

    async def complete(
        self, jobs: Sequence[ClaimedJob], owner: str, results: Sequence[Any] | None = None
    ) -> set[int]:
        """Mark claims completed; ``results`` (one per job, or None) are Django task results."""
        if not jobs:
            return set()
        values = [_json(r) for r in results] if results is not None else [None] * len(jobs)
        rows = await self._execute(queries.COMPLETE, {**_claims(jobs), "results": values, "owner": owner})
        return {r[0] for r in rows}

    async def fail(self, failures: Sequence[Failure], owner: str) -> set[int]:
        """Schedule retries or bury claims as dead."""
        if not failures:
            return set()
        params = {
            **_claims([f.job for f in failures]),
            "statuses": ["dead" if f.dead else "retry" for f in failures],
            "delays": [0.0 if f.dead else max(0.0, float(f.delay)) for f in failures],
            "errors": [text_safe(f.error[:10_000]) for f in failures],
            "max_attempts": [f.max_attempts or f.job.max_attempts for f in failures],
            "results": [_json(f.result) for f in failures],
            "owner": owner,
        }
        rows = await self._execute(queries.FAIL, params)
        return {r[0] for r in rows}

    async def release(
        self, jobs: Sequence[ClaimedJob], owner: str, delays: Sequence[float] | None = None
    ) -> set[int]:
        """Hand claims back without spending their attempt: ready now, or again after ``delays``."""
        if not jobs:
            return set()
        values = [max(0.0, float(d)) for d in delays] if delays is not None else [0.0] * len(jobs)
        rows = await self._execute(queries.RELEASE, {**_claims(jobs), "delays": values, "owner": owner})
        return {r[0] for r in rows}

    async def heartbeat(self, jobs: Sequence[ClaimedJob], owner: str, lease: float = 30.0) -> set[int]:
        """Extend the leases ``owner`` still holds; returns their ids."""
        if not jobs:
            return set()
        rows = await self._execute(queries.HEARTBEAT, {**_claims(jobs), "lease": lease, "owner": owner})
        return {r[0] for r in rows}

    async def rescue_expired(self, limit: int = 500) -> list[tuple[int, str]]:
        """Move jobs whose lease expired to retry (or dead); returns ``(id, new status)`` pairs."""
        rows = await self._execute(queries.RESCUE_EXPIRED, {"limit": limit})
        return [(r[0], r[1]) for r in rows]

    async def set_tuning(self, priority_aging: float, fairness_quantum: float) -> None:
        """Write the claim order's constants (``AUTOMATE_PRIORITY_AGING``, ``..._FAIRNESS_QUANTUM``)."""
        await self._execute_no_rows(
            queries.SET_TUNING, {"aging": float(priority_aging), "quantum": float(fairness_quantum)}
        )

    async def _execute_no_rows(self, query: LiteralString, params: dict[str, Any]) -> None:
        pool = await db.get_pool()
        try:
            async with pool.connection() as conn:
                await conn.execute(query, params)
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            db.recheck_soon(pool)
            raise DatabaseUnavailable(f"Outbox query failed: {exc}") from exc
        except TimeoutError as exc:
            raise DatabaseUnavailable("No database connection became free in time.") from exc

    async def generation(self) -> int:
        rows = await self._execute(queries.GENERATION, {})
        return int(rows[0][0])
