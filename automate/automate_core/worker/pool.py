"""``WorkerPool``: the worker loop of one process.

* **Claim** ``min(batch_size, free slots)`` jobs in one statement, whenever slots are free and a
  NOTIFY arrived or the (jittered) poll interval passed.
* **Run** each job as its own task; the dispatcher maps the outcome to complete, retry or dead.
* **Heartbeat** extends the leases of running jobs; the **rescuer** gives expired leases of other
  (dead) workers back to the queue.
* **Stop** on SIGTERM/SIGINT: claim nothing more, let running jobs finish until the deadline, then
  release the rest (they are ready again at once for another worker); a second signal stops now.
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
import uuid
from dataclasses import dataclass

from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable
from automate_core.observability import metrics
from automate_core.outbox.store import ClaimedJob, OutboxStore
from automate_core.worker.dispatch import Dispatcher
from automate_core.worker.listener import Listener

logger = logging.getLogger("automate.worker")


@dataclass(slots=True)
class WorkerOptions:
    concurrency: int
    batch_size: int
    poll_interval: float
    lease_seconds: float
    shutdown_timeout: float = 30.0

    @classmethod
    def from_settings(cls, **overrides: float | int | None) -> WorkerOptions:
        values = {
            "concurrency": int(settings.WORKER_CONCURRENCY),
            "batch_size": int(settings.WORKER_BATCH_SIZE),
            "poll_interval": float(settings.POLL_INTERVAL),
            "lease_seconds": float(settings.LEASE_SECONDS),
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
    ) -> None:
        self.options = options or WorkerOptions.from_settings()
        self.store = store or OutboxStore()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.dispatcher = dispatcher or Dispatcher(self.store)
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.running: dict[int, tuple[ClaimedJob, asyncio.Task[None]]] = {}
        self.processed = 0

    # -- lifecycle ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stopping.is_set():
            logger.warning("second %s: stopping now", sig.name)
            for _job, task in self.running.values():
                task.cancel()
            return
        logger.info("%s: finishing %d running jobs, claiming no more", sig.name, len(self.running))
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    async def run(self) -> None:
        logger.info(
            "worker %s started (concurrency %d, batch %d)",
            self.worker_id, self.options.concurrency, self.options.batch_size,
        )  # fmt: skip
        listener = Listener(self.wake)
        background = [
            asyncio.create_task(listener.run(), name="automate-listen"),
            asyncio.create_task(self._heartbeat(), name="automate-heartbeat"),
            asyncio.create_task(self._rescue(), name="automate-rescue"),
        ]
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        logger.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    # -- claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            free = self.options.concurrency - len(self.running)
            claimed = 0
            if free > 0:
                try:
                    jobs = await self.store.claim_batch(
                        min(self.options.batch_size, free),
                        self.worker_id,
                        self.options.lease_seconds,
                    )
                    backoff = 0.5
                except DatabaseUnavailable as exc:
                    logger.warning("claim failed (%s); retrying in %.1fs", exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 15.0)
                    continue
                metrics.jobs_claimed.inc(len(jobs))
                for job in jobs:
                    self.running[job.id] = (job, asyncio.create_task(self._run(job)))
                claimed = len(jobs)
            if claimed and claimed == min(self.options.batch_size, free):
                continue  # the queue may hold more; claim again while slots are free
            self.wake.clear()
            await self._sleep(self.options.poll_interval * random.uniform(0.9, 1.1))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()

    async def _run(self, job: ClaimedJob) -> None:
        try:
            await self.dispatcher.run(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("job %s: unexpected worker error; its lease will expire", job.id)
        finally:
            self.running.pop(job.id, None)
            self.processed += 1
            self.wake.set()  # a slot is free

    # -- shutdown -------------------------------------------------------------------------

    async def _drain(self) -> None:
        if not self.running:
            return
        tasks = [task for _job, task in self.running.values()]
        _done, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_timeout)
        if not pending:
            return
        unfinished = [job for job, task in self.running.values() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            released = await self.store.release(unfinished)
            logger.info("released %d unfinished jobs for other workers", len(released))
        except DatabaseUnavailable:
            logger.warning("could not release %d jobs; their leases will expire", len(unfinished))

    # -- leases ---------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        interval = self.options.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            jobs = [job for job, _task in self.running.values()]
            if not jobs:
                continue
            try:
                await self.store.heartbeat(jobs, self.options.lease_seconds)
            except DatabaseUnavailable as exc:
                logger.warning("heartbeat failed: %s", exc)

    async def _rescue(self) -> None:
        interval = max(1.0, self.options.lease_seconds / 2)
        while True:
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                rescued = await self.store.rescue_expired()
            except DatabaseUnavailable as exc:
                logger.warning("rescue failed: %s", exc)
                continue
            if rescued:
                metrics.jobs_rescued.inc(len(rescued))
                logger.warning("rescued %d jobs whose lease expired", len(rescued))
                self.wake.set()
