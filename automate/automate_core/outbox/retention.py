"""Retention: prune completed jobs, old dead jobs and old events, a little at a time.

What retention means here (the policy is ``AUTOMATE_RETENTION_*``, in seconds; None keeps):

* **Completed jobs** are queue entries whose work is done; their history lives on in the runs. A
  completed job leaves the queue for the day partition of its completion (``history.settled``),
  and a day goes whole once it ended longer than ``RETENTION_COMPLETED_JOBS`` ago (default one
  day). A run keeps its event, attempt and the id of its job, which the console then no longer
  finds. Jobs completed before migration 0018 (or by a worker of the previous release) are in the
  queue's partition and are deleted from it after that age, a batch at a time, as before.
* **Dead jobs** wait for a human (``automate dead``, the admin) for ``RETENTION_DEAD_JOBS``
  (default 30 days).
* **Events, runs and step records** are partitioned by day (``automate_core.history``): a day's
  partitions are dropped whole once the day is older than ``RETENTION_EVENTS`` (default 30 days)
  and nothing about it is pending. Its runs and steps go once none of its runs is pending. Its
  events go once no run of theirs is left (an old event replayed yesterday keeps its day as long
  as yesterday's runs) and no job: the day's settled jobs (completed, or dead for longer than
  ``RETENTION_DEAD_JOBS``) are deleted first; a job still queued or dead and kept keeps the day.
  No event, run or step row is deleted one by one. Debounce windows and batches flushed longer
  ago than that go too, with their members.
* **Throttle state** of a key whose last turn is an hour past goes (it is the same as none).

Each row-deleting statement looks at ``RETENTION_BATCH_SIZE`` rows in id order and deletes what qualifies, so
locks are short and the claim never waits behind a big delete; a pass walks from the oldest row
until it meets rows too young to prune, pausing between statements. One worker at a time runs a
pass (a session advisory lock); the others skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable
from automate_core.history import partitions, settled
from automate_core.observability import metrics
from automate_core.outbox import queries

logger = logging.getLogger("automate.retention")

#: pg_advisory_lock key of retention passes (b"automat" read as a number).
LOCK_KEY = 0x6175746F6D6174


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    completed_jobs: float | None
    dead_jobs: float | None
    events: float | None
    batch_size: int = 1000

    @classmethod
    def from_settings(cls) -> RetentionPolicy:
        def age(value: Any) -> float | None:
            return None if value is None else float(value)

        return cls(
            age(settings.RETENTION_COMPLETED_JOBS),
            age(settings.RETENTION_DEAD_JOBS),
            age(settings.RETENTION_EVENTS),
            int(settings.RETENTION_BATCH_SIZE),
        )

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.completed_jobs, self.dead_jobs, self.events))


@dataclass(frozen=True, slots=True)
class PruneReport:
    jobs: int = 0
    #: the history partitions dropped (days of events, runs, steps), and the ones kept past their age
    dropped: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    skipped: bool = False  # another worker holds the retention lock


class Pruner:
    def __init__(self, policy: RetentionPolicy | None = None, pause: float = 0.01) -> None:
        self.policy = policy or RetentionPolicy.from_settings()
        self.pause = pause

    async def run_pass(self) -> PruneReport:
        """One pass over jobs, then the history's days. Raises ``DatabaseUnavailable`` if the database
        is away."""
        if not self.policy.enabled:
            return PruneReport()
        pool = await db.get_pool()
        try:
            if settings.DB_TRANSACTION_POOLING:
                return await self._pooled_pass(pool)
            async with pool.connection() as conn:
                cur = await conn.execute(queries.TRY_RETENTION_LOCK, {"key": LOCK_KEY})
                row = await cur.fetchone()
                if not row or not row[0]:
                    return PruneReport(skipped=True)
                try:
                    return await self._pass(conn)
                finally:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute(queries.RETENTION_UNLOCK, {"key": LOCK_KEY})
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            db.recheck_soon(pool)
            raise DatabaseUnavailable(f"Retention pass failed: {exc}") from exc
        except TimeoutError as exc:
            raise DatabaseUnavailable("No database connection became free in time.") from exc

    async def _pooled_pass(self, pool: Any) -> PruneReport:
        """Behind a transaction pooler a session lock would stay on whichever server connection
        took it: the lock and the pass use the direct connection (LISTEN_DATABASE_URL), or, without
        one, share a transaction (a transaction-scoped lock; the pass is one transaction then)."""
        info = db.direct_conninfo()
        if info is not None:
            async with await psycopg.AsyncConnection.connect(info, autocommit=True) as conn:
                cur = await conn.execute(queries.TRY_RETENTION_LOCK, {"key": LOCK_KEY})
                row = await cur.fetchone()
                if not row or not row[0]:
                    return PruneReport(skipped=True)
                try:
                    return await self._pass(conn)
                finally:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute(queries.RETENTION_UNLOCK, {"key": LOCK_KEY})
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%(key)s)", {"key": LOCK_KEY})
            row = await cur.fetchone()
            if not row or not row[0]:
                return PruneReport(skipped=True)
            return await self._pass(conn)

    async def _pass(self, conn: psycopg.AsyncConnection[Any]) -> PruneReport:
        p = self.policy
        jobs = 0
        report = partitions.DropReport()
        ages = [a for a in (p.completed_jobs, p.dead_jobs) if a is not None]
        if ages:
            params = {"completed_age": p.completed_jobs, "dead_age": p.dead_jobs, "young": min(ages)}
            jobs = await self._walk(conn, queries.PRUNE_JOBS, params)
            metrics.retention_pruned.labels("jobs").inc(jobs)
        done_days: tuple[str, ...] = ()
        if p.completed_jobs is not None:
            done_days = await settled.drop_expired(conn, p.completed_jobs)
            metrics.retention_pruned.labels("history_partitions").inc(len(done_days))
        if p.events is not None:
            groups = await self._walk(conn, queries.PRUNE_GROUPS, {"age": p.events})
            metrics.retention_pruned.labels("event_groups").inc(groups)
            pruned_jobs = 0

            async def release(conn: psycopg.AsyncConnection[Any], lower: int, upper: int) -> None:
                nonlocal pruned_jobs
                params = {"lower": lower, "upper": upper, "dead_age": p.dead_jobs, "scan": p.batch_size}
                while True:
                    cur = await conn.execute(queries.PRUNE_EVENT_DAY_JOBS, params)
                    row = await cur.fetchone()
                    count = int(row[0]) if row else 0
                    pruned_jobs += count
                    if count < p.batch_size:
                        return
                    await asyncio.sleep(self.pause)

            report = await partitions.drop_expired(conn, p.events, release=release)
            metrics.retention_pruned.labels("history_partitions").inc(len(report.dropped))
            metrics.retention_pruned.labels("jobs").inc(pruned_jobs)
            jobs += pruned_jobs
        while True:  # throttle state that says nothing any more (a batch at a time)
            cur = await conn.execute(queries.PRUNE_THROTTLE_STATE, {"scan": p.batch_size})
            if cur.rowcount < p.batch_size:
                break
            await asyncio.sleep(self.pause)
        if jobs:
            logger.info("retention: pruned %d jobs", jobs)
        return PruneReport(jobs, done_days + report.dropped, report.kept)

    async def _walk(
        self, conn: psycopg.AsyncConnection[Any], query: LiteralString, params: dict[str, Any]
    ) -> int:
        total, after = 0, 0
        while True:
            cur = await conn.execute(query, {**params, "after": after, "scan": self.policy.batch_size})
            row = await cur.fetchone()
            assert row is not None
            pruned, last_id, reached_young = row
            total += int(pruned)
            if last_id is None or reached_young:
                return total
            after = last_id
            await asyncio.sleep(self.pause)
