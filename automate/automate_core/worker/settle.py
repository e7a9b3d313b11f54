"""``Settler``: writes the outcomes of finished jobs to the outbox in batches.

A finished job hands its ``Settlement`` (complete, retry, dead or release) to the settler and
frees its slot at once. The settler writes everything that is pending in one statement per kind
(usually a single ``COMPLETE`` for the whole batch), one flush at a time: settlements that arrive
while a flush is in flight share the next one, and a short linger (``AUTOMATE_SETTLE_LINGER``)
lets a burst of finishing jobs share a commit. This is the batched completer of River and Oban
Pro: a handful of commits per hundred jobs instead of one per job.

Until its settlement is written the job stays claimed by this worker: the heartbeat keeps
renewing its lease, and if the database is away the settler keeps the settlements and retries
with backoff. A crash before the flush loses nothing but the write: the lease expires, the job is
rescued and runs again (at least once), with the attempt counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from automate_core.exceptions import DatabaseUnavailable
from automate_core.observability import metrics
from automate_core.outbox.store import ClaimedJob, Failure, OutboxStore

logger = logging.getLogger("automate.worker")

Action = Literal["complete", "retry", "dead", "release"]


@dataclass(slots=True)
class Settlement:
    """What to write for one finished claim."""

    job: ClaimedJob
    action: Action
    delay: float = 0.0  # retry: the backoff; release: how long until the job is claimable again
    error: str = ""
    max_attempts: int | None = None  # retry/dead: the cap of the workflow's retry policy
    result: Any = None  # Django tasks: merged into the job's stored result


class Settler:
    def __init__(
        self,
        store: OutboxStore,
        owner: str,
        *,
        linger: float = 0.002,
        max_batch: int = 1000,
        on_flushed: Callable[[], None] = lambda: None,
    ):
        self.store = store
        self.on_flushed = on_flushed
        self.owner = owner
        self.linger = linger
        self.max_batch = max_batch
        self.pending: dict[int, Settlement] = {}
        self.inflight: dict[int, Settlement] = {}
        self.flushes = 0
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._hurry = False

    # -- what the pool calls ------------------------------------------------------------------

    def submit(self, settlement: Settlement) -> None:
        self.pending[settlement.job.id] = settlement
        self._idle.clear()
        self._ready.set()

    @property
    def unsettled(self) -> int:
        return len(self.pending) + len(self.inflight)

    def held(self) -> list[ClaimedJob]:
        """Jobs finished but not yet settled: their leases must still be renewed."""
        return [s.job for s in (*self.inflight.values(), *self.pending.values())]

    def drop(self, ids: Iterable[int]) -> None:
        """Forget settlements whose lease was lost (the write would match nothing anyway)."""
        for job_id in ids:
            self.pending.pop(job_id, None)
        if not self.pending and not self.inflight:
            self._idle.set()

    async def close(self, within: float) -> bool:
        """Flush everything now (no linger); False if some could not be written ``within`` seconds."""
        self._hurry = True
        self._ready.set()
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    # -- the flush loop -----------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.2
        while True:
            await self._ready.wait()
            if self.linger > 0 and not self._hurry and len(self.pending) < self.max_batch:
                await asyncio.sleep(self.linger)
            batch = self._take()
            if not batch:
                continue
            try:
                await self.flush(batch)
                backoff = 0.2
            except DatabaseUnavailable as exc:
                logger.warning("could not settle %d jobs (%s); retrying in %.1fs", len(batch), exc, backoff)
                self._requeue(batch)
                await asyncio.sleep(0.05 if self._hurry else backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # one settlement the database refuses must not stall the others
                logger.exception("could not settle %d jobs together; writing them one by one", len(batch))
                await self._one_by_one(batch)
            finally:
                self.inflight.clear()
                if not self.pending:
                    self._idle.set()
                self.on_flushed()

    def _requeue(self, batch: list[Settlement]) -> None:
        for settlement in batch:  # back in line, unless something newer replaced it
            self.pending.setdefault(settlement.job.id, settlement)
        self._ready.set()

    async def _one_by_one(self, batch: list[Settlement]) -> None:
        for settlement in batch:
            try:
                await self.flush([settlement])
            except DatabaseUnavailable:
                self._requeue([settlement])
            except Exception:
                logger.exception(
                    "the outcome of job %s cannot be written; its lease expires and it runs again",
                    settlement.job.id,
                )

    def _take(self) -> list[Settlement]:
        ids = list(self.pending)[: self.max_batch]
        batch = [self.pending.pop(i) for i in ids]
        self.inflight.update((s.job.id, s) for s in batch)
        if not self.pending:
            self._ready.clear()
        return batch

    async def flush(self, batch: list[Settlement]) -> None:
        """Write ``batch``: one statement per kind of transition present in it."""
        self.flushes += 1
        completes = [s for s in batch if s.action == "complete"]
        failures = [s for s in batch if s.action in ("retry", "dead")]
        releases = [s for s in batch if s.action == "release"]
        held: set[int] = set()
        started = time.perf_counter()
        if completes:
            jobs, results = [s.job for s in completes], [s.result for s in completes]
            done = await self.store.complete(jobs, self.owner, results)
            held |= done
            metrics.jobs_completed.inc(len(done))
        if failures:
            failed = await self.store.fail(
                [
                    Failure(s.job, s.error, s.action == "dead", s.delay, s.max_attempts, s.result)
                    for s in failures
                ],
                self.owner,
            )
            held |= failed
            for s in failures:
                if s.job.id in failed:
                    (metrics.jobs_dead if s.action == "dead" else metrics.jobs_retried).inc()
        if releases:
            released = await self.store.release(
                [s.job for s in releases], self.owner, [s.delay for s in releases]
            )
            held |= released
            metrics.jobs_released.inc(len(released))
        metrics.settle_batch_size.observe(len(batch))
        metrics.settle_duration.observe(time.perf_counter() - started)
        lost = [s.job.id for s in batch if s.job.id not in held]
        if lost:
            metrics.leases_lost.inc(len(lost))
            logger.warning(
                "%d jobs finished after their lease was taken over; their outcome was not written "
                "(another worker runs them again): %s",
                len(lost), lost[:20],
            )  # fmt: skip
