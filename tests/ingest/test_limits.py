"""Body limits read without buffering, admission control (429), the token endpoint, bad sources."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest

from automate_core.models import Event, WebhookSource
from tests.conftest import database_url, post_webhook, sign

pytestmark = pytest.mark.usefixtures("demo_source")


class SlowUpload:
    """An ASGI conversation driven by the test: the body arrives when the test says so."""

    def __init__(self, path: str, headers: dict[str, str]) -> None:
        self.scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
        self.chunks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received = 0
        self.sent: list[dict[str, Any]] = []
        self.answered = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        message = await self.chunks.get()
        self.received += len(message.get("body", b""))
        return message

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.answered.set()

    def feed(self, body: bytes, more: bool) -> None:
        self.chunks.put_nowait({"type": "http.request", "body": body, "more_body": more})

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def answer(self) -> dict[str, Any]:
        return dict(json.loads(self.sent[1]["body"]))


async def start(conversation: SlowUpload) -> asyncio.Task[None]:
    from asgi.asgi import application

    task: asyncio.Task[None] = asyncio.ensure_future(
        application(conversation.scope, conversation.receive, conversation.send)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0)
    return task


async def test_chunked_body_is_refused_once_past_the_source_limit() -> None:
    await WebhookSource.objects.filter(slug="test").aupdate(config={"max_body_bytes": 1000})
    upload = SlowUpload("/hooks/test/", {"content-type": "application/json"})  # no Content-Length
    task = await start(upload)
    for _ in range(3):
        upload.feed(b"x" * 600, more=True)  # the client would go on sending: 10 MB, say
    await asyncio.wait_for(upload.answered.wait(), 10)
    await task
    assert (upload.status, upload.answer["error"]) == (413, "body_too_large")
    assert upload.received <= 1200  # refused at the second chunk, the third was never read
    assert await Event.objects.acount() == 0


async def test_declared_length_over_the_limit_is_refused_before_reading(client: httpx.AsyncClient) -> None:
    await WebhookSource.objects.filter(slug="test").aupdate(config={"max_body_bytes": 2_000_000})
    body = json.dumps({"type": "t", "blob": "x" * 1_500_000}).encode()
    response = await post_webhook(client, "test", body)
    assert response.status_code == 202  # above the 1 MiB default, within this source's limit
    upload = SlowUpload("/hooks/test/", {"content-type": "application/json", "content-length": "3000000"})
    task = await start(upload)
    await asyncio.wait_for(upload.answered.wait(), 10)
    await task
    assert (upload.status, upload.received) == (413, 0)


@contextlib.asynccontextmanager
async def events_locked() -> AsyncIterator[None]:
    """Hold the event table locked: verified requests wait in the database (and keep their slots)."""
    async with await psycopg.AsyncConnection.connect(database_url()) as conn:
        await conn.execute("LOCK TABLE automate_event IN EXCLUSIVE MODE")
        yield
        await conn.rollback()


async def waiting_for_lock(count: int) -> None:
    """Until ``count`` sessions wait for the lock of :func:`events_locked` (polled, with a deadline).

    Read from ``pg_locks`` (requests not granted on the event table), not from the sessions' query
    text: a statement that is still being parsed when it meets the lock (its first run on a new
    connection) shows as idle with its previous query in ``pg_stat_activity``."""
    async with await psycopg.AsyncConnection.connect(database_url()) as conn:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            cur = await conn.execute(
                "SELECT count(DISTINCT pid) FROM pg_locks"
                " WHERE NOT granted AND relation = 'automate_event'::regclass"
            )
            row = await cur.fetchone()
            if row and row[0] >= count:
                return
            assert asyncio.get_running_loop().time() < deadline, "the inserts never waited for the lock"
            await asyncio.sleep(0.02)


async def test_unverified_slow_senders_take_no_slot_of_the_source(settings: Any) -> None:
    """Issue 18.1: senders that never finish their body must not make valid webhooks 429."""
    await WebhookSource.objects.filter(slug="test").aupdate(config={"max_in_flight": 2})
    body = json.dumps({"type": "t"}).encode()
    forged = {"content-type": "application/json", "x-automate-signature": "sha256=" + "0" * 64}
    slow = [SlowUpload("/hooks/test/", forged) for _ in range(8)]  # 4x the source's slots
    tasks = [await start(s) for s in slow]
    from automate_core.ingest.views import service

    assert service().admission.unverified == 8 and service().admission.per_source == {}
    valid = SlowUpload(
        "/hooks/test/", {"content-type": "application/json", "x-automate-signature": sign(body)}
    )
    task = await start(valid)
    valid.feed(body, more=False)
    await asyncio.wait_for(valid.answered.wait(), 10)
    assert valid.status == 202, valid.answer
    for s in slow:  # their bodies arrive at last: refused by the signature, not by admission
        s.feed(body, more=False)
    await asyncio.gather(*tasks, task)
    assert {s.status for s in slow} == {401}
    assert service().admission.unverified == 0 and service().admission.per_source == {}


async def test_verified_requests_hold_the_in_flight_limits(settings: Any) -> None:
    """Past verification the per-source and per-process bounds answer 429 with Retry-After."""
    settings.AUTOMATE_INGEST_DB_TIMEOUT = 10.0
    await WebhookSource.objects.filter(slug="test").aupdate(config={"max_in_flight": 2})
    body = json.dumps({"type": "t"}).encode()
    headers = {"content-type": "application/json", "x-automate-signature": sign(body)}
    async with events_locked():
        held = [SlowUpload("/hooks/test/", headers) for _ in range(2)]
        tasks = [await start(h) for h in held]
        for h in held:
            h.feed(body, more=False)
        await waiting_for_lock(1)
        third = SlowUpload("/hooks/test/", headers)
        task = await start(third)
        third.feed(body, more=False)
        await asyncio.wait_for(third.answered.wait(), 10)
        assert (third.status, third.answer["error"]) == (429, "too_many_requests")
        assert dict(third.sent[0]["headers"])[b"retry-after"] == b"1"
        assert "for source 'test'" in third.answer["detail"]
    await asyncio.gather(*tasks, task)
    assert [h.status for h in held] == [202, 202]  # the admitted ones complete and free their slots
    settings.AUTOMATE_INGEST_MAX_IN_FLIGHT = 1  # the process-wide bound
    async with events_locked():
        hold = SlowUpload("/hooks/test/", headers)
        held_task = await start(hold)
        hold.feed(body, more=False)
        await waiting_for_lock(1)
        other = SlowUpload("/hooks/test/", headers)
        refused = await start(other)
        other.feed(body, more=False)
        await asyncio.wait_for(other.answered.wait(), 10)
        await refused
        assert (other.status, other.answer["error"]) == (429, "too_many_requests")
        assert "on this server" in other.answer["detail"]
    await held_task
    assert hold.status == 202
    from automate_core.ingest.views import service

    assert service().admission.total == 0 and service().admission.per_source == {}


async def test_the_unverified_bound_of_the_process(settings: Any) -> None:
    settings.AUTOMATE_INGEST_MAX_UNVERIFIED = 1
    body = json.dumps({"type": "t"}).encode()
    headers = {"content-type": "application/json", "x-automate-signature": sign(body)}
    first = SlowUpload("/hooks/test/", headers)
    first_task = await start(first)
    second = SlowUpload("/hooks/test/", headers)
    second_task = await start(second)
    await asyncio.wait_for(second.answered.wait(), 10)
    assert (second.status, second.answer["error"]) == (429, "too_many_requests")
    assert "being received on this server" in second.answer["detail"]
    first.feed(body, more=False)
    await asyncio.gather(first_task, second_task)
    assert first.status == 202


async def test_a_body_that_trickles_past_the_deadline_gets_408(settings: Any) -> None:
    """The lean lane bounds the body's arrival itself, whatever server runs it."""
    settings.AUTOMATE_HTTP_BODY_TIMEOUT = 0.3
    body = json.dumps({"type": "t"}).encode()
    upload = SlowUpload(
        "/hooks/test/", {"content-type": "application/json", "x-automate-signature": sign(body)}
    )
    task = await start(upload)
    upload.feed(body[:3], more=True)  # and then nothing
    await asyncio.wait_for(upload.answered.wait(), 10)
    await task
    assert (upload.status, upload.answer["error"]) == (408, "request_timeout")
    assert "AUTOMATE_HTTP_BODY_TIMEOUT" in upload.answer["detail"]
    assert await Event.objects.acount() == 0


async def test_token_endpoint(client: httpx.AsyncClient, load: Callable[[dict[str, Any]], Any]) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(load)({"sources": [{"slug": "erp", "scheme": "token"}]})
    source = await WebhookSource.objects.aget(slug="erp")
    token = source.issue_token()
    await source.asave()
    assert token not in source.token_hash
    body = json.dumps({"order": 1}).encode()
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {token}",
        "x-automate-event": "order.synced",
        "idempotency-key": "order-1",
    }
    ok = await client.post("/hooks/erp/", content=body, headers=headers)
    assert ok.status_code == 202, ok.text
    event = await Event.objects.aget(pk=ok.json()["event_id"])
    assert (event.event_type, event.idempotency_key) == ("order.synced", "order-1")
    assert "authorization" not in event.headers
    bad = await client.post("/hooks/erp/", content=body, headers={**headers, "authorization": "Bearer atk_x"})
    assert (bad.status_code, bad.json()["error"]) == (401, "token_mismatch")
    # rotation: a second token is issued, both work until revoked
    second = source.issue_token()
    await source.asave()
    for t in (token, second):
        response = await client.post(
            "/hooks/erp/",
            content=body,
            headers={**headers, "authorization": f"Bearer {t}", "idempotency-key": t},
        )
        assert response.status_code == 202


async def test_unverified_source_accepts_anything_json(
    client: httpx.AsyncClient, load: Callable[[dict[str, Any]], Any]
) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(load)({"sources": [{"slug": "open", "scheme": "none"}]})
    response = await client.post("/hooks/open/", json={"type": "anything"})
    assert response.status_code == 202


async def test_misconfigured_source_is_500_with_a_clear_message(client: httpx.AsyncClient) -> None:
    # written around the model's validation (e.g. straight SQL): the ingest path says what is wrong
    await WebhookSource.objects.filter(slug="test").aupdate(config={"max_body_bytes": "big"})
    response = await post_webhook(client, "test", {"type": "t"})
    assert (response.status_code, response.json()["error"]) == (500, "misconfigured_source")
    assert "max_body_bytes" in response.json()["detail"]


def test_model_validation_refuses_bad_config(load: Callable[[dict[str, Any]], Any]) -> None:
    from automate_core.definitions import DefinitionError

    with pytest.raises(DefinitionError, match="max_body_bytes must be at most"):
        load({"sources": [{"slug": "x", "scheme": "none", "config": {"max_body_bytes": 10**9}}]})
    with pytest.raises(DefinitionError, match="dedupe_window_seconds"):
        load({"sources": [{"slug": "x", "scheme": "none", "config": {"dedupe_window_seconds": 60}}]})
    with pytest.raises(DefinitionError, match="needs a secret_ref"):
        load({"sources": [{"slug": "x", "scheme": "stripe"}]})
    with pytest.raises(DefinitionError, match=r"signature\.header"):
        load({"sources": [{"slug": "x", "scheme": "hmac", "secret_ref": "env:X"}]})
