"""Liveness and readiness, cheap enough to be probed every few seconds by every load balancer.

* **Live** (``/healthz``): the process answers. No database: a database outage must not make
  an orchestrator restart every web process (that would only add a restart storm to the outage).
* **Ready** (``/readyz``): the database answers within ``AUTOMATE_READY_TIMEOUT_SECONDS`` and
  every migration on disk is recorded as applied. A new release whose migrations have not run yet
  stays out of the load balancer while the old one keeps serving; that is what makes a rolling
  upgrade safe (docs/operations.md). The migration files are read once per process, and once all
  are applied the check is not repeated (migrations are never un-applied under a running
  release); until then it costs one small query per probe.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import PoolTimeout

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import AutomateError
from automate_core.observability import queries

logger = logging.getLogger("automate.observability")


@dataclass(slots=True)
class Readiness:
    """The result of one readiness check; ``checks`` maps each check to ``ok`` or a short reason."""

    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


def _disk_migrations() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Every migration on disk, with the migrations it replaces (squashed ones)."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {key: list(m.replaces) for key, m in loader.disk_migrations.items()}


class ReadinessProbe:
    """Checks the database and the migrations; one instance per process."""

    def __init__(self) -> None:
        self._disk: dict[tuple[str, str], list[tuple[str, str]]] | None = None
        self._migrated = False
        self._last_ready: bool | None = None

    async def check(self) -> Readiness:
        timeout = float(settings.READY_TIMEOUT_SECONDS)
        checks = {"database": "ok", "migrations": "ok" if self._migrated else "unknown"}
        try:
            if self._disk is None:
                self._disk = await asyncio.to_thread(_disk_migrations)
            pool = await db.get_pool()
            async with asyncio.timeout(timeout), pool.connection(timeout=timeout) as conn:
                await conn.execute(queries.PING)
                if not self._migrated:
                    cur = await conn.execute(queries.APPLIED_MIGRATIONS)
                    pending = self._pending({(app, name) for app, name in await cur.fetchall()})
                    self._migrated = not pending
                    checks["migrations"] = "ok" if not pending else f"{len(pending)} pending"
        except (psycopg.Error, PoolTimeout, TimeoutError, OSError, AutomateError) as exc:
            checks["database"] = "unavailable"
            self._log_change(False, f"database unavailable ({type(exc).__name__}: {exc})")
            return Readiness(False, checks)
        ready = self._migrated
        self._log_change(ready, "ready" if ready else f"migrations {checks['migrations']}")
        return Readiness(ready, checks)

    def _pending(self, applied: set[tuple[str, str]]) -> list[tuple[str, str]]:
        assert self._disk is not None
        pending = []
        for key, replaces in self._disk.items():
            if key in applied or (replaces and all(r in applied for r in replaces)):
                continue
            pending.append(key)
        return pending

    def _log_change(self, ready: bool, reason: str) -> None:
        if ready != self._last_ready:
            (logger.info if ready else logger.warning)("readiness: %s", reason)
            self._last_ready = ready


@functools.cache
def probe() -> ReadinessProbe:
    """The process's readiness probe (it caches the migration files and the migrated state)."""
    return ReadinessProbe()
