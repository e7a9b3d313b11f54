"""The platform through a real PgBouncer in transaction mode: webhooks in, jobs drained, runs
recorded exactly once; psycopg's prepared statements off (and shown to break without that); LISTEN
on its direct connection, or polling without one; retention's lock never left on a server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from automate_core import db
from automate_core.ingest.ingestor import emit
from automate_core.models import Event, ExecutionRun, OutboxJob
from automate_core.outbox.retention import LOCK_KEY, Pruner, RetentionPolicy
from automate_core.worker.pool import WorkerPool
from tests.conftest import database_url, post_webhook
from tests.helpers import eventually
from tests.pooler.pgbouncer import PgBouncer
from tests.worker.conftest import options, running

pytestmark = pytest.mark.usefixtures("live_db")

STATEMENT = "SELECT count(*) FROM automate_event WHERE id > %s"


def _completed(n: int) -> Callable[[], bool]:
    return lambda: OutboxJob.objects.filter(status="completed").count() >= n


async def test_webhooks_in_jobs_drained_runs_recorded_exactly_once(
    through_pgbouncer: PgBouncer, demo_source: str, client: httpx.AsyncClient, load: Any
) -> None:
    step = {"name": "say", "connector": "log", "action": "info", "params": {"message": "hi"}}
    await sync_to_async(load)(
        {"workflows": [{"name": "say", "trigger": {"source": "test"}, "steps": [step]}]}
    )
    database = database_url().rsplit("/", 1)[1]
    carried_before = through_pgbouncer.transactions(database)
    n = 60
    async with running(WorkerPool(options(concurrency=8, batch_size=8))) as pool:
        answers = await asyncio.gather(
            *[post_webhook(client, "test", {"n": i}, headers={"idempotency-key": f"k{i}"}) for i in range(n)]
        )
        assert {r.status_code for r in answers} == {202}
        # a redelivery through the pooler is recognised, not stored twice
        again = await post_webhook(client, "test", {"n": 0}, headers={"idempotency-key": "k0"})
        assert again.status_code == 200 and again.json()["event_id"] == answers[0].json()["event_id"]
        await eventually(_completed(n), within=30, message="the worker did not drain through PgBouncer")
        assert pool.listener.connected.is_set() and not pool.listener.polling
    ids = sorted(int(r.json()["event_id"]) for r in answers)
    assert len(set(ids)) == n
    assert await Event.objects.acount() == n
    per_event = await sync_to_async(
        lambda: sorted(ExecutionRun.objects.filter(status="succeeded").values_list("event_id", flat=True))
    )()
    assert per_event == ids  # every event's run exactly once
    # it all really went through PgBouncer: ingest, claims, completions, run records
    assert through_pgbouncer.transactions(database) - carried_before > n  # (group commit batches them)


def _hold_and_reuse(kwargs: dict[str, Any], url: str) -> None:
    """Run a statement often on connection A (psycopg prepares it after 5 runs), then have B hold
    the server connection A used (PgBouncer hands out the last used one first) and run it again."""
    with psycopg.connect(url, **kwargs) as a, psycopg.connect(url, autocommit=True) as b:
        for _ in range(8):
            a.execute(STATEMENT, [0])
        with b.transaction():
            b.execute("SELECT 1")
            a.execute(STATEMENT, [0])


def test_prepared_statements_are_off_behind_a_pooler(pgbouncer: PgBouncer, settings: Any) -> None:
    url = pgbouncer.url("pool_of_two")
    settings.AUTOMATE_DB_TRANSACTION_POOLING = False
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):  # the bug the setting prevents
        _hold_and_reuse(db.connection_kwargs(), url)
    settings.AUTOMATE_DB_TRANSACTION_POOLING = True
    assert db.connection_kwargs()["prepare_threshold"] is None
    _hold_and_reuse(db.connection_kwargs(), url)


async def test_notify_on_the_direct_connection_wakes_an_idle_worker(through_pgbouncer: PgBouncer) -> None:
    pool = WorkerPool(options(poll_interval=60))
    async with running(pool):
        await asyncio.wait_for(pool.listener.connected.wait(), 10)
        await eventually(lambda: pool.claims >= 1)  # its first claim found nothing: it waits now
        await sync_to_async(emit)("elsewhere", "x", {})
        await eventually(_completed(1), within=5, message="the NOTIFY did not wake the worker")


async def test_without_a_direct_connection_the_worker_polls(
    through_pgbouncer: PgBouncer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUTOMATE_LISTEN_DATABASE_URL = ""
    assert db.direct_conninfo() is None
    with pytest.raises(Exception, match="AUTOMATE_LISTEN_DATABASE_URL"):
        await db.connect()
    pool = WorkerPool(options(poll_interval=0.2))
    with caplog.at_level(logging.INFO, "automate.worker"):
        async with running(pool):
            await eventually(lambda: pool.claims >= 1)
            await sync_to_async(emit)("elsewhere", "x", {})
            await eventually(_completed(1), within=5, message="the polling worker did not claim")
    assert pool.listener.polling and not pool.listener.connected.is_set()
    assert "polls for jobs" in caplog.text


def _advisory_locks() -> int:
    with psycopg.connect(database_url()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s::bigint %% 4294967296",
            [LOCK_KEY],
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("direct", [True, False], ids=["direct-connection", "transaction-lock"])
async def test_retention_leaves_no_lock_on_a_pooled_server_connection(
    through_pgbouncer: PgBouncer, settings: Any, direct: bool
) -> None:
    if not direct:
        settings.AUTOMATE_LISTEN_DATABASE_URL = ""
    ids = await sync_to_async(lambda: [emit("old", "x", {}).event_id for _ in range(3)])()
    past = timezone.now() - timedelta(hours=1)
    await OutboxJob.objects.filter(event_id__in=ids).aupdate(status="completed", completed_at=past)
    pruner = Pruner(RetentionPolicy(completed_jobs=0.0, dead_jobs=None, events=None))
    first = await pruner.run_pass()
    assert first.jobs == 3 and not first.skipped
    assert _advisory_locks() == 0, "the retention lock stayed on a server connection behind PgBouncer"
    assert not (await pruner.run_pass()).skipped  # and the next pass may take it again


def test_the_deployable_settings_follow_the_environment() -> None:
    """AUTOMATE_DB_TRANSACTION_POOLING turns Django's server-side cursors off; REPLICA_DATABASE_URL
    adds DATABASES["replica"] (mirrored in tests), and the router is installed."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://app@pgbouncer:6432/automate",
        "REPLICA_DATABASE_URL": "postgresql://app@replica:5432/automate",
        "AUTOMATE_DB_TRANSACTION_POOLING": "1",
        "SECRET_KEY": "settings-test-secret-key-0123456789abcdefghijklmnopqrstuv",
    }
    code = "import json, asgi.settings as s; print(json.dumps([s.DATABASES, s.DATABASE_ROUTERS]))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    databases, routers = json.loads(out.stdout)
    assert databases["default"]["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert databases["replica"]["HOST"] == "replica" and databases["replica"]["TEST"] == {"MIRROR": "default"}
    assert routers == ["automate_core.db_router.ReplicaRouter"]
