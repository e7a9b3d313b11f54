"""The database router on a real streaming replica (pg_basebackup -R of a throwaway primary):
console reads go to the replica, the hot path and users never do; a lagging, unreachable or
promoted replica is not used, with a warning, and reads fall back to the primary."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from automate_core import db_router
from automate_core.db_router import ReplicaReadsMiddleware, ReplicaRouter, health, reading_from_replica
from automate_core.models import Event
from tests.ha.pg import PgNode, temporary_root
from tests.pooler.pgbouncer import free_port

DATABASE = "automate"
router = ReplicaRouter()


class Pair:
    def __init__(self) -> None:
        self.root = temporary_root("automate-replica-")
        self.primary = PgNode.primary(self.root)
        self.primary.execute(f"CREATE DATABASE {DATABASE}")
        self.replica = self.primary.replica(self.root)

    def close(self) -> None:
        self.replica.stop("immediate")
        self.primary.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def insert_event(self, key: str) -> None:
        self.primary.execute(
            "INSERT INTO automate_event (source, event_type, payload, headers, idempotency_key, trace_id) "
            "VALUES ('replica', 'x', '{}', '{}', %s, 't')",
            [key],
            database=DATABASE,
        )

    def replicated(self, key: str) -> None:
        self.replica.wait_for(
            f"SELECT count(*) FROM automate_event WHERE idempotency_key = '{key}'", 1, database=DATABASE
        )


@pytest.fixture(scope="module")
def pair(django_db_setup: None, django_db_blocker: Any) -> Iterator[Pair]:
    """The schema is the test database's (pg_dump -s), so the ORM can read the replica; the
    replica is ``DATABASES["replica"]`` for this module's tests."""
    pair = Pair()
    try:
        p = connections["default"].settings_dict
        dump = subprocess.run(
            [str(pair.primary.bindir / "pg_dump"), "-s", "-h", p["HOST"] or "127.0.0.1",
             "-p", str(p["PORT"] or 5432), "-U", p["USER"] or "postgres", p["NAME"]],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        subprocess.run(
            [str(pair.primary.bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", pair.primary.url(DATABASE)],
            input=dump.stdout, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        filled = connections.configure_settings(
            {"default": dict(p), db_router.REPLICA: pair.replica.django_settings(DATABASE)}
        )
        connections.settings[db_router.REPLICA] = filled[db_router.REPLICA]
        yield pair
    finally:
        if db_router.REPLICA in connections.settings:
            connections[db_router.REPLICA].close()
            del connections[db_router.REPLICA]
            del connections.settings[db_router.REPLICA]
        health.reset()
        pair.close()


@pytest.fixture
def replica_at(pair: Pair, settings: Any) -> Iterator[Callable[[str, int], None]]:
    """Point ``DATABASES["replica"]`` elsewhere for one test (the replica by default)."""
    settings.AUTOMATE_REPLICA_CHECK_INTERVAL = 0.0
    settings.AUTOMATE_REPLICA_MAX_LAG_SECONDS = 30.0
    params = connections.settings[db_router.REPLICA]
    saved = params["HOST"], params["PORT"]

    def point(host: str, port: int) -> None:
        params["HOST"], params["PORT"] = host, str(port)
        health.reset()

    health.reset()
    try:
        yield point
    finally:
        params["HOST"], params["PORT"] = saved
        health.reset()


@pytest.mark.django_db
def test_without_a_replica_every_read_is_the_primarys() -> None:
    configured = connections.settings.pop(db_router.REPLICA, None)  # as in a deployment without one
    try:
        with reading_from_replica():
            assert router.db_for_read(Event) is None
            assert not Event.objects.exists()
    finally:
        if configured is not None:
            connections.settings[db_router.REPLICA] = configured
    assert router.allow_migrate("default", "automate_core") is None


@pytest.mark.django_db(databases=["default", db_router.REPLICA])
def test_console_reads_go_to_the_replica_the_hot_path_and_users_never(
    pair: Pair, replica_at: Callable[[str, int], None]
) -> None:
    pair.insert_event("only-on-the-pair")  # the throwaway primary, not the test database
    pair.replicated("only-on-the-pair")
    with reading_from_replica():
        assert router.db_for_read(Event) == db_router.REPLICA
        assert list(Event.objects.values_list("idempotency_key", flat=True)) == ["only-on-the-pair"]
        assert router.db_for_read(User) is None  # a login is visible on the next page
        assert router.db_for_write(Event) == "default"
    # outside a read-only request (workers, commands, writes): the primary
    assert router.db_for_read(Event) is None
    assert not Event.objects.filter(idempotency_key="only-on-the-pair").exists()
    assert router.allow_migrate(db_router.REPLICA, "automate_core") is False


@pytest.mark.django_db
def test_a_lagging_replica_is_not_used_until_it_catches_up(
    pair: Pair, replica_at: Callable[[str, int], None], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUTOMATE_REPLICA_MAX_LAG_SECONDS = 0.5
    pair.insert_event("before-the-lag")
    pair.replicated("before-the-lag")
    with reading_from_replica():
        assert router.db_for_read(Event) == db_router.REPLICA
    pair.replica.execute("SELECT pg_wal_replay_pause()")
    try:
        pair.insert_event("while-it-lags")  # received by the replica, not replayed
        with caplog.at_level(logging.WARNING, "automate.db"), reading_from_replica():
            deadline = time.monotonic() + 15
            while router.db_for_read(Event) != "default" and time.monotonic() < deadline:
                time.sleep(0.05)  # the lag grows with the clock: poll the router's own decision
            assert router.db_for_read(Event) == "default"
            assert not Event.objects.filter(idempotency_key="while-it-lags").exists()  # primary's data
        assert "replica not used" in caplog.text and "lags" in caplog.text
        lag = health.get().lag
        assert lag is not None and lag > 0.5
    finally:
        pair.replica.execute("SELECT pg_wal_replay_resume()")
    pair.replicated("while-it-lags")
    with caplog.at_level(logging.WARNING, "automate.db"), reading_from_replica():
        assert router.db_for_read(Event) == db_router.REPLICA
    assert "replica back in use" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["unreachable", "promoted"])
def test_a_missing_or_promoted_replica_falls_back_to_the_primary(
    pair: Pair, replica_at: Callable[[str, int], None], which: str, caplog: pytest.LogCaptureFixture
) -> None:
    if which == "unreachable":
        replica_at(pair.replica.host, free_port())  # nothing listens there
    else:
        replica_at(pair.primary.host, pair.primary.port)  # not in recovery: not a replica
    with caplog.at_level(logging.WARNING, "automate.db"), reading_from_replica():
        assert router.db_for_read(Event) == "default"
        assert not Event.objects.filter(source="replica").exists()  # the test database answered
        assert router.db_for_read(Event) == "default"
    expected = "cannot reach it" if which == "unreachable" else "not in recovery"
    assert expected in caplog.text
    assert caplog.text.count("replica not used") == 1  # once per change, not per query


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"])
def test_only_read_only_requests_read_from_the_replica(method: str) -> None:
    seen: list[bool] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(db_router._reading.get())
        return HttpResponse()

    async def aview(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)
        return view(request)

    request = RequestFactory().generic(method, "/admin/automate/")
    ReplicaReadsMiddleware(view)(request)
    async_to_sync(ReplicaReadsMiddleware(aview))(request)  # type: ignore[arg-type]
    safe = method in {"GET", "HEAD", "OPTIONS"}
    assert seen == [safe, safe]
    assert db_router._reading.get() is False  # and it is off again after the request
