"""``LeaseKeeper``: renews the leases of this worker's claims and notices the ones it lost.

Every third of the lease, one ``HEARTBEAT`` statement extends the leases of all running jobs and
of the finished ones whose settlement is not written yet. A claim the heartbeat no longer finds
was taken over (its lease expired and the rescuer gave the job to the queue): the job is
cancelled here, so it never runs in two places for longer than one heartbeat interval.

The keeper also knows, without asking the database, until when each lease surely holds (the
moment the claim or the last successful heartbeat was *sent*, plus the lease). If the database
cannot be reached for that long, the job is presumed taken over and cancelled too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from automate_core.exceptions import DatabaseUnavailable
from automate_core.observability import metrics
from automate_core.outbox.store import ClaimedJob, OutboxStore

logger = logging.getLogger("automate.worker")


@dataclass(slots=True)
class Running:
    job: ClaimedJob
    task: asyncio.Task[None]
    deadline: float  # time.monotonic() until which the lease surely holds
    lost: bool = field(default=False)


class LeaseKeeper:
    def __init__(
        self,
        store: OutboxStore,
        owner: str,
        lease_seconds: float,
        running: dict[int, Running],
        settled_later: Callable[[], list[ClaimedJob]],
        on_lost: Callable[[list[int]], None],
        unsent: Callable[[], Collection[int]] = tuple,
    ) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.running = running
        self.settled_later = settled_later
        self.on_lost = on_lost
        self.unsent = unsent

    async def run(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
            except Exception:  # keep beating: a missed renewal is worse than a logged bug
                logger.exception("heartbeat failed unexpectedly")

    async def beat(self) -> None:
        jobs = [r.job for r in self.running.values()] + self.settled_later()
        if not jobs:
            return
        sent = time.monotonic()
        try:
            # a database that hangs instead of failing must not keep jobs running past their lease
            async with asyncio.timeout(self.lease_seconds / 3):
                held = await self.store.heartbeat(jobs, self.owner, self.lease_seconds)
        except (DatabaseUnavailable, TimeoutError) as exc:
            logger.warning("heartbeat failed (%s); %d leases are not renewed", exc or "timed out", len(jobs))
            self.expire_overdue()
            return
        for job_id in held:
            entry = self.running.get(job_id)
            if entry is not None:
                entry.deadline = sent + self.lease_seconds
        # Not found is lost only for a claim still ours now: running, or its settlement not yet
        # sent. One whose settlement was sent meanwhile may have committed before the heartbeat
        # ran (a completed job is no longer 'running'): that is the settler's business, not a loss.
        unsent = set(self.unsent())
        lost = [j.id for j in jobs if j.id not in held and (j.id in self.running or j.id in unsent)]
        if lost:
            logger.warning("lost the lease of %d jobs (another worker took them): %s", len(lost), lost[:20])
            self.lose(lost)

    def expire_overdue(self) -> None:
        now = time.monotonic()
        overdue = [job_id for job_id, r in self.running.items() if r.deadline < now]
        if overdue:
            logger.warning(
                "%d leases ran out while the database was unreachable; stopping those jobs", len(overdue)
            )
            self.lose(overdue)

    def lose(self, ids: list[int]) -> None:
        metrics.leases_lost.inc(len(ids))
        for job_id in ids:
            entry = self.running.get(job_id)
            if entry is not None and not entry.lost:
                entry.lost = True
                entry.task.cancel()
        self.on_lost(ids)
