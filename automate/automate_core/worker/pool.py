"""``WorkerPool``: the worker loop of one process.

* **Claim** ``min(batch_size, free slots)`` jobs in one statement. After a full claim it claims
  again while slots are free; after a short one (the queue is drained) it waits for a NOTIFY or
  the jittered poll interval. While busy it waits until half a batch of slots is free (or a few
  milliseconds passed) so that each claim is worth its round trip.
* **Run** each job as its own task; the ``Dispatcher`` turns its outcome into a settlement, which
  the ``Settler`` writes in batches (usually one ``COMPLETE`` for many jobs).
* **Leases**: the ``LeaseKeeper`` renews them and cancels jobs whose lease was taken over; the
  rescuer (``maintenance``) gives expired leases of dead workers back to the queue.
* **Stop** on SIGTERM/SIGINT: claim nothing more, let running jobs finish until the shutdown
  timeout, cancel the rest and hand them back (ready at once for another worker, attempt not
  spent). A second signal cancels at once and still hands back what it can.
* **Database outages** are logged and retried with backoff; the loop never exits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import time
import uuid
from dataclasses import dataclass

from automate_core.conf import settings
from automate_core.exceptions import ConfigurationError, DatabaseUnavailable
from automate_core.observability import metrics
from automate_core.outbox.retention import Pruner
from automate_core.outbox.store import ClaimedJob, OutboxStore
from automate_core.worker import maintenance
from automate_core.worker.dispatch import Dispatcher
from automate_core.worker.leases import LeaseKeeper, Running
from automate_core.worker.listener import Listener
from automate_core.worker.settle import Settlement, Settler

logger = logging.getLogger("automate.worker")

#: While busy, the longest a claim waits for half a batch of free slots.
CLAIM_COOLDOWN = 0.005


@dataclass(slots=True)
class WorkerOptions:
    concurrency: int
    batch_size: int
    poll_interval: float
    lease_seconds: float
    shutdown_timeout: float = 30.0
    rescue_interval: float = 5.0
    settle_linger: float = 0.002
    maintenance: bool = True  # run the rescuer and retention passes
    queues: tuple[str, ...] = ()  # the queues to claim from; empty: every queue

    @classmethod
    def from_settings(cls, **overrides: float | int | bool | tuple[str, ...] | None) -> WorkerOptions:
        values: dict[str, float | int | bool | tuple[str, ...]] = {
            "queues": tuple(settings.WORKER_QUEUES),
            "concurrency": int(settings.WORKER_CONCURRENCY),
            "batch_size": int(settings.WORKER_BATCH_SIZE),
            "poll_interval": float(settings.POLL_INTERVAL),
            "lease_seconds": float(settings.LEASE_SECONDS),
            "shutdown_timeout": float(settings.SHUTDOWN_TIMEOUT),
            "rescue_interval": float(settings.RESCUE_INTERVAL),
            "settle_linger": float(settings.SETTLE_LINGER),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


class WorkerPool:
    def __init__(
        self,
        options: WorkerOptions | None = None,
        *,
        store: OutboxStore | None = None,
        dispatcher: Dispatcher | None = None,
        worker_id: str | None = None,
        pruner: Pruner | None = None,
    ) -> None:
        self.options = options or WorkerOptions.from_settings()
        self.store = store or OutboxStore()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.dispatcher = dispatcher or Dispatcher(worker_id=self.worker_id)
        self.pruner = pruner or Pruner()
        self.slot_freed = asyncio.Event()
        self.settler = Settler(
            self.store, self.worker_id, linger=self.options.settle_linger, on_flushed=self.slot_freed.set
        )
        self.running: dict[int, Running] = {}
        self.leases = LeaseKeeper(
            self.store,
            self.worker_id,
            self.options.lease_seconds,
            self.running,
            self.settler.held,
            self.settler.drop,
            unsent=self.settler.pending.keys,
        )
        self.notified = asyncio.Event()  # NOTIFY, poll timer or rescue: the queue may have work
        self.listener = Listener(self.notified)
        self.stopping = asyncio.Event()
        self.forced = asyncio.Event()
        self.processed = 0
        self.claims = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stopping.is_set():
            logger.warning("second %s: stopping now, handing back %d jobs", sig.name, len(self.running))
            self.force_stop()
            return
        logger.info("%s: finishing %d running jobs, claiming no more", sig.name, len(self.running))
        self.stop()

    def stop(self) -> None:
        """Claim no more; running jobs may finish until the shutdown timeout."""
        self.stopping.set()
        self.notified.set()
        self.slot_freed.set()

    def force_stop(self) -> None:
        """Cancel running jobs now; they are handed back to the queue."""
        self.stop()
        self.forced.set()
        for entry in list(self.running.values()):
            entry.task.cancel()

    async def run(self) -> None:
        logger.info(
            "worker %s started (concurrency %d, batch %d, lease %gs, queues %s)",
            self.worker_id, self.options.concurrency, self.options.batch_size, self.options.lease_seconds,
            ", ".join(self.options.queues) or "all",
        )  # fmt: skip
        await self._write_tuning()
        background = [
            asyncio.create_task(self.listener.run(), name="automate-listen"),
            asyncio.create_task(self.leases.run(), name="automate-heartbeat"),
            asyncio.create_task(self.settler.run(), name="automate-settle"),
        ]
        if self.options.maintenance:
            background += [
                asyncio.create_task(
                    maintenance.rescue_loop(self.store, self.options.rescue_interval, self.notified.set),
                    name="automate-rescue",
                ),
                asyncio.create_task(
                    maintenance.retention_loop(self.pruner, float(settings.RETENTION_INTERVAL)),
                    name="automate-retention",
                ),
                asyncio.create_task(
                    maintenance.partitions_loop(float(settings.RETENTION_INTERVAL)),
                    name="automate-partitions",
                ),
                asyncio.create_task(
                    maintenance.stale_reservations_loop(float(settings.RETENTION_INTERVAL)),
                    name="automate-budgets",
                ),
            ]
        try:
            await self._claim_loop()
            await self._finish_running()
            await self._settle_all()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        logger.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    async def _write_tuning(self) -> None:
        """The claim order's constants are the database's: write this process's settings there."""
        aging, quantum = float(settings.PRIORITY_AGING), float(settings.FAIRNESS_QUANTUM)
        if not (aging >= 0 and quantum >= 0):  # also refuses NaN
            raise ConfigurationError(
                f"AUTOMATE_PRIORITY_AGING ({aging}) and AUTOMATE_FAIRNESS_QUANTUM ({quantum}) must be "
                "0 or more seconds."
            )
        try:
            await self.store.set_tuning(aging, quantum)
        except DatabaseUnavailable as exc:
            logger.warning("could not write the claim order's settings (%s); the stored ones apply", exc)

    # -- claiming -----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        opts = self.options
        refill = max(1, min(opts.batch_size, opts.concurrency) // 2)
        backoff = 0.5
        queue_has_more = True  # until a claim comes back short
        while not self.stopping.is_set():
            free = self._free_slots()
            if free <= 0:
                await self._wait(self.slot_freed, None)
                continue
            if not queue_has_more:
                await self._wait(self.notified, opts.poll_interval * random.uniform(0.9, 1.1))
                queue_has_more = True
                continue
            if free < refill and self.running:
                await self._wait_for_slots(refill, CLAIM_COOLDOWN)
                free = self._free_slots()
                if free <= 0:
                    continue
            if self.stopping.is_set():
                break
            limit = min(opts.batch_size, free)
            self.notified.clear()  # a NOTIFY arriving during the claim is kept
            sent = time.monotonic()
            try:
                jobs = await self.store.claim_batch(limit, self.worker_id, opts.lease_seconds, opts.queues)
                backoff = 0.5
            except DatabaseUnavailable as exc:
                logger.warning("claim failed (%s); retrying in %.1fs", exc, backoff)
                await self._wait(self.stopping, backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            self.claims += 1
            metrics.jobs_claimed.inc(len(jobs))
            metrics.claim_batch_size.observe(len(jobs))
            for job in jobs:
                task = asyncio.create_task(self._run(job), name=f"automate-job-{job.id}")
                self.running[job.id] = Running(job, task, sent + opts.lease_seconds)
            metrics.jobs_running.inc(len(jobs))
            queue_has_more = len(jobs) == limit

    def _free_slots(self) -> int:
        """Jobs this worker may claim now.

        A running job takes a slot. A finished job whose settlement is not written yet takes
        half of one, so to speak: up to ``concurrency`` of them are free, beyond that they hold
        claims back, so claiming can never outrun the writes (and the leases to renew stay few).
        """
        running, unsettled = len(self.running), self.settler.unsettled
        return min(self.options.concurrency - running, 2 * self.options.concurrency - running - unsettled)

    async def _wait(self, event: asyncio.Event, seconds: float | None) -> None:
        """Wait for ``event`` (then clear it) for at most ``seconds``, or until the pool stops."""
        if not event.is_set() and not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await event.wait()
        if event is not self.stopping:
            event.clear()

    async def _wait_for_slots(self, wanted: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self._free_slots() < wanted and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await self._wait(self.slot_freed, left)

    async def _run(self, job: ClaimedJob) -> None:
        try:
            settlement = await self.dispatcher.execute(job)
        except asyncio.CancelledError:
            entry = self.running.get(job.id)
            if entry is not None and not entry.lost:  # stopping: hand the job back, unspent
                self.settler.submit(Settlement(job, "release"))
            raise
        else:
            entry = self.running.get(job.id)
            if entry is None or not entry.lost:
                self.settler.submit(settlement)
        finally:
            self.running.pop(job.id, None)
            metrics.jobs_running.dec()
            self.processed += 1
            self.slot_freed.set()

    # -- shutdown -----------------------------------------------------------------------------

    async def _finish_running(self) -> None:
        """Let running jobs finish until the shutdown timeout; cancel the rest (they are handed back).

        A second signal (``force_stop``) cancels them at once, which ends this wait too.
        """
        if self.running:
            tasks = [entry.task for entry in self.running.values()]
            await asyncio.wait(tasks, timeout=self.options.shutdown_timeout)
        unfinished = [entry.task for entry in self.running.values()]
        for task in unfinished:
            task.cancel()
        if unfinished:
            logger.info("handing back %d unfinished jobs to the queue", len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)
        for job_id, entry in list(self.running.items()):  # cancelled before they ever started
            self.running.pop(job_id)
            metrics.jobs_running.dec()
            if not entry.lost:
                self.settler.submit(Settlement(entry.job, "release"))

    async def _settle_all(self) -> None:
        timeout = 2.0 if self.forced.is_set() else 10.0
        if not await self.settler.close(timeout):
            left = self.settler.held()
            logger.warning(
                "could not write the outcome of %d jobs before stopping; their leases expire and "
                "another worker runs them again",
                len(left),
            )
