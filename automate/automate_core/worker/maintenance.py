"""Maintenance every worker runs in the background: the rescuer and the retention pass.

* **Rescuer**: every ``RESCUE_INTERVAL`` (jittered, so many workers do not fire together) one
  ``RESCUE_EXPIRED`` statement moves jobs whose lease expired back to the queue (or to dead when
  that claim spent their last attempt). Any worker can rescue any job; ``SKIP LOCKED`` keeps
  concurrent rescuers out of each other's way. A killed worker's jobs therefore run again at most
  ``LEASE_SECONDS + RESCUE_INTERVAL`` after its last heartbeat.
* **Retention** (``automate_core.outbox.retention``): every ``RETENTION_INTERVAL``, one worker at
  a time prunes what the policy says, in small batches.
* **History partitions** (``automate_core.history``): at start and every ``RETENTION_INTERVAL``,
  the run records' partitions of today and the next ``HISTORY_PARTITIONS_AHEAD`` days are made if
  missing (retention drops the old ones, in the retention pass).
* **Stale token reservations** (LLM budgets): every ``RETENTION_INTERVAL``, reservations older than
  ``LLM_STALE_RESERVATION_SECONDS`` whose call never settled (its worker died mid-call) are charged
  their estimate and closed, so a budget does not stay held by calls that will never report.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import psycopg

from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable
from automate_core.observability import metrics
from automate_core.outbox.retention import Pruner
from automate_core.outbox.store import OutboxStore

logger = logging.getLogger("automate.worker")


async def rescue_loop(store: OutboxStore, interval: float, on_rescued: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        try:
            rescued = await store.rescue_expired()
        except DatabaseUnavailable as exc:
            logger.warning("rescue failed: %s", exc)
            continue
        if rescued:
            dead = sum(1 for _id, status in rescued if status == "dead")
            metrics.jobs_rescued.inc(len(rescued))
            metrics.jobs_dead.inc(dead)
            logger.warning(
                "rescued %d jobs whose lease expired (%d of them spent their last attempt and are dead)",
                len(rescued), dead,
            )  # fmt: skip
            on_rescued()


async def retention_loop(pruner: Pruner, interval: float) -> None:
    if not pruner.policy.enabled:
        return
    await asyncio.sleep(interval * random.uniform(0.1, 1.0))  # workers started together spread out
    while True:
        try:
            await pruner.run_pass()
        except DatabaseUnavailable as exc:
            logger.warning("retention pass failed: %s", exc)
        except Exception:  # e.g. a new table referencing events that the pass does not know
            logger.exception("retention pass failed; retrying next interval")
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))


async def partitions_loop(interval: float) -> None:
    from automate_core import db
    from automate_core.history import partitions

    while True:
        try:
            pool = await db.get_pool()
            async with pool.connection() as conn:
                await partitions.ensure_ahead(conn, int(settings.HISTORY_PARTITIONS_AHEAD))
        except (psycopg.OperationalError, TimeoutError) as exc:
            logger.warning("making history partitions ahead failed: %s", exc)
        except Exception:
            logger.exception("making history partitions ahead failed; retrying next interval")
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))


async def stale_reservations_loop(interval: float) -> None:
    from automate_governance import budgets

    await asyncio.sleep(interval * random.uniform(0.1, 1.0))
    while True:
        try:
            closed = await budgets.release_stale(float(settings.LLM_STALE_RESERVATION_SECONDS))
            if closed:
                logger.warning("charged %d LLM token reservations whose calls never settled", closed)
        except (DatabaseUnavailable, psycopg.OperationalError) as exc:
            logger.warning("closing stale token reservations failed: %s", exc)
        except Exception:
            logger.exception("closing stale token reservations failed; retrying next interval")
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))
