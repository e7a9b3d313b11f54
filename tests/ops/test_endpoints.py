"""/healthz, /readyz and /metrics served by the ASGI application, against the real database."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone
from psycopg_pool import AsyncConnectionPool

from automate_core import db
from automate_core.exceptions import ConfigurationError
from automate_core.models import ExecutionRun, OutboxJob
from automate_core.observability import exposition, health, queries
from tests.conftest import post_webhook


def client_from(address: tuple[str, int] | None) -> httpx.AsyncClient:
    from asgi.asgi import application

    transport = httpx.ASGITransport(app=application, client=address)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def remote() -> AsyncIterator[httpx.AsyncClient]:
    """A client connecting from an address that is not loopback."""
    async with client_from(("203.0.113.9", 40000)) as c:
        yield c


@pytest.fixture(autouse=True)
def _fresh_state(settings: Any) -> None:
    settings.AUTOMATE_METRICS_DB_CACHE_SECONDS = 0.0
    settings.AUTOMATE_METRICS_ALLOWED_IPS = ["127.0.0.1", "::1"]  # listed, as a deployment would
    health.probe.cache_clear()
    exposition.database_gauges.cache_clear()


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line of an exposition page."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


# --- /healthz -----------------------------------------------------------------------------------


async def test_healthz_answers_without_the_database(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_database() -> Any:
        raise AssertionError("/healthz must not touch the database")

    monkeypatch.setattr(db, "get_pool", no_database)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"
    head = await client.head("/healthz")
    assert head.status_code == 200 and head.content == b""


async def test_probes_refuse_writes(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        response = await client.post(path)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


# --- /readyz ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("live_db")
async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


@pytest.mark.usefixtures("live_db")
async def test_readyz_is_unavailable_until_migrations_are_applied(client: httpx.AsyncClient) -> None:
    """A release whose migrations have not run stays out of the load balancer (rolling upgrade)."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    (leaf,) = graph.leaf_nodes("automate_core")
    (previous,) = [p for p in graph.node_map[leaf].parents if p.key[0] == "automate_core"]
    await sync_to_async(call_command)("migrate", "automate_core", previous.key[1], verbosity=0)
    try:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"] == "1 pending"
    finally:
        await sync_to_async(call_command)("migrate", verbosity=0)
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_readyz_is_unavailable_when_the_database_does_not_answer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.AUTOMATE_READY_TIMEOUT_SECONDS = 0.5
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        f"host=127.0.0.1 port={port} dbname=x connect_timeout=1", min_size=0, max_size=1, open=False
    )
    await pool.open(wait=False)

    async def unreachable() -> AsyncConnectionPool[Any]:
        return pool

    monkeypatch.setattr(db, "get_pool", unreachable)
    try:
        response = await client.get("/readyz")
    finally:
        await pool.close()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "migrations": "unknown"},
    }
    assert str(port) not in response.text  # no connection details for anonymous callers


# --- /metrics: access ---------------------------------------------------------------------------


@pytest.mark.usefixtures("live_db")
async def test_metrics_from_loopback(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE automate_jobs_claimed_total counter" in response.text
    assert "automate_metrics_database_up 1.0" in response.text


async def test_metrics_refused_to_other_addresses(remote: httpx.AsyncClient) -> None:
    response = await remote.get("/metrics")
    assert response.status_code == 403
    assert "AUTOMATE_METRICS_ALLOWED_IPS" in response.json()["detail"]
    assert "automate_" not in response.text


async def test_no_address_is_trusted_unless_listed(client: httpx.AsyncClient, settings: Any) -> None:
    """Issue 18.7: a reverse proxy on the same host makes every visitor loopback; trust is explicit."""
    settings.AUTOMATE_METRICS_ALLOWED_IPS = []
    response = await client.get("/metrics")  # from 127.0.0.1
    assert response.status_code == 403
    assert "AUTOMATE_METRICS_ALLOWED_IPS (none set)" in response.json()["detail"]
    from automate_core.conf import Defaults

    assert Defaults.METRICS_ALLOWED_IPS == []  # the library's default too


def test_the_deployable_default_trusts_loopback_only_in_debug() -> None:
    import subprocess
    import sys

    code = "import asgi.settings as s; print(s.AUTOMATE_METRICS_ALLOWED_IPS)"
    for debug, expected in (("0", "[]"), ("1", "['127.0.0.1', '::1']")):
        env = {**os.environ, "DEBUG": debug, "SECRET_KEY": "x" * 60}
        env.pop("AUTOMATE_METRICS_ALLOWED_IPS", None)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


async def test_a_forwarded_request_is_judged_by_the_client_the_proxy_saw(settings: Any) -> None:
    """Through a proxy uvicorn trusts, the client is the last X-Forwarded-For hop: that is judged.

    uvicorn has already replaced the peer with that hop; a hop the client wrote itself, or
    headers uvicorn does not read (Forwarded, X-Real-IP), never let a request in by address.
    """
    settings.AUTOMATE_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "127.0.0.1"]
    cases = [
        # (client as uvicorn reports it, headers, status)
        (("10.1.2.3", 0), {"X-Forwarded-For": "10.1.2.3"}, 200),  # proxied for an allowed client
        (("198.51.100.7", 0), {"X-Forwarded-For": "198.51.100.7"}, 403),  # proxied for a visitor
        (("198.51.100.7", 0), {"X-Forwarded-For": "10.1.2.3, 198.51.100.7"}, 403),  # forged first hop
        (("127.0.0.1", 5), {"X-Forwarded-For": "10.1.2.3, 198.51.100.7"}, 403),  # peer not replaced
        (("127.0.0.1", 5), {"X-Forwarded-For": "127.0.0.1"}, 200),  # a local client, said twice
        (("127.0.0.1", 5), {"Forwarded": "for=127.0.0.1"}, 403),
        (("127.0.0.1", 5), {"X-Real-IP": "127.0.0.1"}, 403),
        (("127.0.0.1", 5), {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}, 403),
    ]
    for address, headers, status in cases:
        async with client_from(address) as c:
            assert (await c.get("/metrics", headers=headers)).status_code == status, (address, headers)


@pytest.mark.usefixtures("live_db")
async def test_metrics_with_the_bearer_token(remote: httpx.AsyncClient, settings: Any) -> None:
    settings.AUTOMATE_METRICS_TOKEN = "scrape-token-0123456789"
    assert (await remote.get("/metrics")).status_code == 401
    assert (await remote.get("/metrics")).headers["www-authenticate"] == "Bearer"
    wrong = await remote.get("/metrics", headers={"Authorization": "Bearer scrape-token-012345678"})
    assert wrong.status_code == 401
    right = await remote.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
    assert right.status_code == 200
    via_proxy = await remote.get(
        "/metrics",
        headers={"Authorization": "Bearer scrape-token-0123456789", "X-Forwarded-For": "198.51.100.1"},
    )
    assert via_proxy.status_code == 200


@pytest.mark.usefixtures("live_db")
async def test_allowed_networks(settings: Any) -> None:
    settings.AUTOMATE_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "2001:db8::/32"]
    for address, status in [
        (("10.20.30.40", 1), 200),
        (("2001:db8::5", 1), 200),
        (("::ffff:10.1.1.1", 1), 200),  # IPv4 seen through a dual-stack socket
        (("127.0.0.1", 1), 403),  # no longer listed
        (("11.0.0.1", 1), 403),
        (None, 403),  # a Unix socket: could be anyone behind the proxy that owns it
    ]:
        async with client_from(address) as c:
            assert (await c.get("/metrics")).status_code == status, address


def test_a_bad_allowlist_entry_says_what_to_write(settings: Any) -> None:
    settings.AUTOMATE_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "intranet"]
    with pytest.raises(ConfigurationError, match="'intranet' is not an address or a network"):
        exposition.authorize({"headers": [], "client": ("10.1.1.1", 1)})


# --- /metrics: the database gauges --------------------------------------------------------------


def make_jobs() -> None:
    now = timezone.now()
    from automate_core.ingest.ingestor import emit

    for _ in range(3):
        emit("test", "t", {})
    jobs = list(OutboxJob.objects.order_by("id"))
    OutboxJob.objects.filter(pk=jobs[0].pk).update(available_at=now - dt.timedelta(seconds=120))
    OutboxJob.objects.filter(pk=jobs[1].pk).update(status="retry", available_at=now + dt.timedelta(hours=1))
    OutboxJob.objects.filter(pk=jobs[2].pk).update(status="dead")
    for _ in range(2):
        emit("test", "t", {})
    OutboxJob.objects.filter(pk=OutboxJob.objects.order_by("-id")[0].pk).update(
        status="running", lease_expires_at=now + dt.timedelta(seconds=30)
    )
    OutboxJob.objects.filter(pk=OutboxJob.objects.order_by("-id")[1].pk).update(status="completed")
    emit("test", "t", {}, queue="billing")
    event = jobs[0].event
    assert event is not None
    ExecutionRun.objects.create(workflow_name="w", event=event, status="failed", trace_id="t")
    ExecutionRun.objects.create(workflow_name="w", event=event, status="succeeded", trace_id="t")
    old = ExecutionRun.objects.create(workflow_name="w", event=event, status="succeeded", trace_id="t")
    ExecutionRun.objects.filter(pk=old.pk).update(started_at=now - dt.timedelta(hours=1))


@pytest.mark.usefixtures("live_db")
async def test_queue_gauges_follow_the_database(client: httpx.AsyncClient) -> None:
    await sync_to_async(make_jobs)()
    page = samples((await client.get("/metrics")).text)
    assert page['automate_outbox_jobs{status="ready"}'] == 2  # one of them on "billing"
    assert page['automate_outbox_jobs{status="retry"}'] == 1
    assert page['automate_outbox_jobs{status="running"}'] == 1
    assert page['automate_outbox_jobs{status="dead"}'] == 1
    assert page["automate_outbox_due_jobs"] == 2  # the retry is an hour away
    assert 119 <= page["automate_outbox_oldest_ready_age_seconds"] < 3600
    assert page['automate_runs_recent{status="failed"}'] == 1
    assert page['automate_runs_recent{status="succeeded"}'] == 1  # the hour-old one is not recent
    # per queue: the ready and the retry job are on the default queue, plus one on "billing"
    assert page['automate_outbox_queue_depth{queue="default"}'] == 2
    assert page['automate_outbox_queue_due{queue="default"}'] == 1
    assert 119 <= page['automate_outbox_queue_oldest_seconds{queue="default"}'] < 3600
    assert page['automate_outbox_queue_depth{queue="billing"}'] == 1
    assert 0 <= page['automate_outbox_queue_oldest_seconds{queue="billing"}'] < 60


@pytest.mark.usefixtures("live_db")
async def test_the_database_gauges_are_reused_for_a_few_seconds(
    client: httpx.AsyncClient, settings: Any
) -> None:
    settings.AUTOMATE_METRICS_DB_CACHE_SECONDS = 3600.0
    first = samples((await client.get("/metrics")).text)
    await sync_to_async(make_jobs)()
    again = samples((await client.get("/metrics")).text)
    assert again['automate_outbox_jobs{status="dead"}'] == first['automate_outbox_jobs{status="dead"}'] == 0


async def test_metrics_still_answer_when_the_database_does_not(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.AUTOMATE_READY_TIMEOUT_SECONDS = 0.5

    async def broken() -> Any:
        raise ConfigurationError("No database configured")

    monkeypatch.setattr(db, "get_pool", broken)
    response = await client.get("/metrics")
    assert response.status_code == 200
    page = samples(response.text)
    assert page["automate_metrics_database_up"] == 0
    assert "automate_outbox_jobs" not in response.text
    assert "automate_jobs_claimed_total" in response.text  # the process metrics are still there


@pytest.mark.usefixtures("live_db")
async def test_scrape_queries_read_the_partial_indexes() -> None:
    """Each outbox count must be answerable from its partial index, never by scanning history."""
    await sync_to_async(make_jobs)()
    pool = await db.get_pool()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("ANALYZE automate_outbox_job")
        cur = await conn.execute("EXPLAIN (FORMAT JSON) " + queries.OUTBOX_DEPTH)
        plan = json.dumps((await cur.fetchone())[0])
        cur = await conn.execute("EXPLAIN (FORMAT JSON) " + queries.RECENT_RUNS)
        runs_plan = json.dumps((await cur.fetchone())[0])
        cur = await conn.execute("EXPLAIN (FORMAT JSON) " + queries.QUEUE_DEPTH)
        queue_plan = json.dumps((await cur.fetchone())[0])
    for index in ("automate_outbox_leased", "automate_outbox_dead"):
        assert index in plan
    # either partial index of the claimable rows (all queues, or by queue: the same rows)
    assert "automate_outbox_claimable" in plan or "automate_outbox_by_queue" in plan
    assert "Seq Scan" not in plan
    assert "automate_outbox_by_queue" in queue_plan and "Seq Scan" not in queue_plan
    assert "automate_run_started_brin" in runs_plan


# --- trace ids in the ingest lane ---------------------------------------------------------------


@pytest.mark.usefixtures("demo_source")
async def test_each_webhook_request_gets_its_own_trace_id(client: httpx.AsyncClient) -> None:
    first = (await post_webhook(client, "test", {"type": "a"})).json()
    second = (await post_webhook(client, "test", {"type": "b"})).json()
    assert re.fullmatch(r"[0-9a-f]{32}", first["trace_id"])
    assert first["trace_id"] != second["trace_id"]
    from automate_core import context

    assert context.trace_id.get() == ""  # nothing leaks out of the request
