"""Against a real server and a PostgreSQL of the test's own: racing redeliveries, the database going away.

The platform runs under uvicorn with two worker processes on 127.0.0.1, on a throwaway PostgreSQL
that the test stops and starts (the shared test database cannot be stopped).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import standardwebhooks

from tests.ingest.throwaway_pg import ThrowawayPostgres

ROOT = Path(__file__).resolve().parents[2]
WHSEC = "whsec_" + base64.b64encode(b"fault-test-standard-webhooks-key").decode()

pytestmark = pytest.mark.slow


class Platform:
    def __init__(self, pg: ThrowawayPostgres, base_url: str) -> None:
        self.pg, self.base_url = pg, base_url

    def signed(self, msg_id: str, payload: dict[str, object]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload)
        now = datetime.now(UTC)
        return body.encode(), {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": standardwebhooks.Webhook(WHSEC).sign(msg_id, now, body),
        }

    async def post(self, client: httpx.AsyncClient, msg_id: str) -> httpx.Response:
        body, headers = self.signed(msg_id, {"type": "fault.test", "id": msg_id})
        return await client.post(f"{self.base_url}/hooks/faults/", content=body, headers=headers)

    def events(self, where: str = "TRUE") -> list[tuple[int, str]]:
        with psycopg.connect(self.pg.url) as conn:
            rows = conn.execute(
                "SELECT e.id, e.idempotency_key FROM automate_event e"
                " JOIN automate_outbox_job j ON j.event_id = e.id WHERE " + where  # test-controlled text
            ).fetchall()
        return [(r[0], r[1]) for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # not pytest's tmp_path: its parents are private to root, and the server runs as another user
    directory = Path(tempfile.mkdtemp(prefix="automate-faults-"))
    pg = ThrowawayPostgres(directory)
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "SECRET_KEY": "fault-test",
        "DJANGO_SETTINGS_MODULE": "tests.ingest.fault_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "automate")]),
        "AUTOMATE_SECRET_FAULTS": WHSEC,
    }
    server = None
    try:
        subprocess.run(
            [sys.executable, "-m", "automate_core.cli.main", "migrate"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO automate_webhook_source (slug, name, scheme, secret_ref, token_hash, config,"
                " enabled, created_at, updated_at) VALUES ('faults', '', 'standard_webhooks', 'env:FAULTS',"
                " '', '{}', true, now(), now())"
            )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "asgi.asgi:application", "--port", str(port), "--workers", "2",
             "--log-level", "warning", "--no-access-log", "--lifespan", "on"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        yield Platform(pg, f"http://127.0.0.1:{port}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        pg.close()
        shutil.rmtree(directory, ignore_errors=True)


async def test_racing_identical_requests_make_one_event(platform: Platform) -> None:
    """Many copies of a delivery at once, over separate connections to two processes: one event."""
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await platform.post(client, "warm-up")  # both workers have their pools open
        keys = [f"race-{n}" for n in range(5)]
        responses = await asyncio.gather(*(platform.post(client, key) for key in keys for _ in range(20)))
    by_key: dict[str, list[httpx.Response]] = {}
    for key, response in zip([k for k in keys for _ in range(20)], responses, strict=True):
        by_key.setdefault(key, []).append(response)
    stored = dict((k, i) for i, k in platform.events("e.idempotency_key LIKE 'race-%'"))
    assert sorted(stored) == keys
    for key, answers in by_key.items():
        assert sorted(r.status_code for r in answers) == [200] * 19 + [202]
        assert {r.json()["event_id"] for r in answers} == {stored[key]}
        assert len({r.json()["trace_id"] for r in answers}) == 1


async def test_database_outage_gives_503_then_recovers_by_itself(platform: Platform) -> None:
    """PostgreSQL stopped for 8 s under load: every request meanwhile is a bounded 503, and about a
    second after the database is back every process serves again. With psycopg_pool's default
    backoff (1, 2, 4, 8 s between tries) a process went on answering 503 for 5 s after this
    outage; ``DB_RECONNECT_TIMEOUT`` (2 s) keeps the gap between tries at about a second."""
    outage, recovered_within = 8.0, 1.0 + 2.0  # a second's gap + the busy machine's margin
    async with httpx.AsyncClient(timeout=15) as client:
        before = await platform.post(client, "before-outage")
        assert before.status_code == 202
        platform.pg.stop()
        during: list[httpx.Response] = []
        try:
            stopped = time.monotonic()
            # a request that hung would fail with the client's 15 s timeout: the answer is bounded
            while time.monotonic() - stopped < outage:
                keys = [f"outage-{len(during) + n}" for n in range(4)]
                during += await asyncio.gather(*(platform.post(client, key) for key in keys))
            assert {r.status_code for r in during} == {503}, [r.text for r in during]
            assert all(r.headers["retry-after"] == "5" for r in during)
            assert {r.json()["error"] for r in during} == {"unavailable"}
        finally:
            platform.pg.start()
        back = time.monotonic()
        # senders retrying: a wave of 16 (over both processes) all answered 202 is recovery
        wave = 0
        while True:
            answers = await asyncio.gather(*(platform.post(client, f"after-{wave}-{n}") for n in range(16)))
            assert {r.status_code for r in answers} <= {202, 503}, [r.text for r in answers]
            if {r.status_code for r in answers} == {202}:
                break
            late = [r.text for r in answers if r.status_code != 202]
            assert time.monotonic() - back < recovered_within, late
            wave += 1
    stored = dict((k, i) for i, k in platform.events())
    assert stored["before-outage"] == before.json()["event_id"]
    assert all(stored[f"after-{wave}-{n}"] == answers[n].json()["event_id"] for n in range(16))
    assert not [k for k in stored if k.startswith("outage-")]  # nothing acknowledged, nothing stored


async def test_a_frozen_database_is_answered_in_time_and_honestly(platform: Platform) -> None:
    """Issue 18.8: PostgreSQL SIGSTOPped. Every request is answered 503 within 2 x INGEST_DB_TIMEOUT
    (1 s here) plus a margin for this busy machine, and "nothing was recorded" is said only when
    true: after the thaw, a retry with the same key finds no event for those, and may find one for
    the answers that said the outcome is unknown."""
    bound = 2 * 1.0
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(4):  # both processes have pooled connections, which will hang, not fail
            assert (await platform.post(client, f"warm-{n}")).status_code == 202

        async def timed(key: str) -> tuple[str, httpx.Response, float]:
            started = time.monotonic()
            response = await platform.post(client, key)
            return key, response, time.monotonic() - started

        platform.pg.freeze()
        try:
            during = await asyncio.gather(*(timed(f"frozen-{n}") for n in range(24)))
        finally:
            platform.pg.thaw()
        for key, response, took in during:
            assert response.status_code == 503, (key, response.text)
            assert took < bound + 1.0, (key, took, response.text)
            body = response.json()
            assert body["error"] == "unavailable" and response.headers["retry-after"]
            if body["outcome"] == "not_recorded":
                assert "nothing was recorded" in body["detail"]
            else:
                assert body["outcome"] == "unknown"
                assert "nothing was recorded" not in body["detail"]
                assert "same idempotency key is safe" in body["detail"]
        # thawed: each sender retries with the same key until it is answered
        retried: dict[str, int] = {}
        deadline = time.monotonic() + 30
        for key, _, _ in during:
            while True:
                response = await platform.post(client, key)
                if response.status_code != 503:
                    break
                assert time.monotonic() < deadline, response.text
                await asyncio.sleep(0.2)
            retried[key] = response.status_code
    said = {key: response.json()["outcome"] for key, response, _ in during}
    for key, status in retried.items():
        assert status in (200, 202), (key, status)
        if said[key] == "not_recorded":
            assert status == 202, f"{key} was answered 'nothing was recorded' but had been committed"
    stored = [k for _, k in platform.events("e.idempotency_key LIKE 'frozen-%'")]
    assert sorted(stored) == sorted(retried)  # one event per key, however it was retried
