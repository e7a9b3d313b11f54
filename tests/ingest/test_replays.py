"""Issue 18.6: what decides what is stored comes from signed material, never from a header a
replayer can rewrite; the timestamped ``hmac_sha256`` form; secrets too short to prove anything."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from automate_core.ingest.schemes.hmac import hmac_sha256_headers
from automate_core.models import Event
from tests.conftest import SECRET, post_webhook

pytestmark = pytest.mark.usefixtures("demo_source")

#: what a replayer adds to a captured request: a new key and a new type
REWRITES = [
    {"idempotency-key": "replay-1"},
    {"x-automate-event": "refund.issued"},
    {"idempotency-key": "replay-2", "x-automate-event": "refund.issued"},
    {"idempotency-key": "replay-3", "x-automate-event": "order.created"},
]


def timestamped(body: bytes, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        **hmac_sha256_headers(SECRET.encode(), body, int(time.time())),
        **(extra or {}),
    }


async def events() -> list[tuple[str, str | None]]:
    return [(e.event_type, e.idempotency_key) async for e in Event.objects.order_by("id")]


async def test_a_captured_timestamped_webhook_replayed_with_new_headers_is_the_same_event(
    client: httpx.AsyncClient,
) -> None:
    body = json.dumps({"type": "order.created", "id": 7}).encode()
    captured = timestamped(body, {"idempotency-key": "order-7"})
    first = await client.post("/hooks/test/", content=body, headers=captured)
    assert first.status_code == 202, first.text
    for rewrite in REWRITES:
        replay = await client.post("/hooks/test/", content=body, headers={**captured, **rewrite})
        assert (replay.status_code, replay.json()["status"]) == (200, "duplicate"), rewrite
        assert replay.json()["event_id"] == first.json()["event_id"]
    ((event_type, key),) = await events()
    assert event_type == "order.created" and key is not None and key.startswith("sig:")


async def test_a_key_in_the_signed_body_wins_over_the_header(client: httpx.AsyncClient) -> None:
    """In both forms: the body's idempotency_key is signed, the Idempotency-Key header is not."""
    body = json.dumps({"type": "order.created", "idempotency_key": "order-8"}).encode()
    first = await post_webhook(client, "test", body, headers={"idempotency-key": "other"})
    assert first.status_code == 202
    for rewrite in REWRITES:
        replay = await post_webhook(client, "test", body, headers=rewrite)  # the body-only form
        assert replay.status_code == 200, rewrite
        again = await client.post("/hooks/test/", content=body, headers=timestamped(body, rewrite))
        assert again.status_code == 200, rewrite
    assert await events() == [("order.created", "order-8")]


async def test_a_header_never_retypes_a_signed_body(client: httpx.AsyncClient) -> None:
    typed = json.dumps({"type": "order.created"}).encode()
    untyped = json.dumps({"n": 1}).encode()
    for body in (typed, untyped):
        response = await post_webhook(client, "test", body, headers={"x-automate-event": "refund.issued"})
        assert response.status_code == 202
    assert [t for t, _ in await events()] == ["order.created", "webhook"]


async def test_the_token_scheme_still_reads_the_generic_headers(
    client: httpx.AsyncClient, load: Callable[[dict[str, Any]], Any]
) -> None:
    """Nothing is signed there: the token authenticates the caller, which names its event."""
    from asgiref.sync import sync_to_async

    from automate_core.models import WebhookSource

    await sync_to_async(load)({"sources": [{"slug": "erp", "scheme": "token"}]})
    source = await WebhookSource.objects.aget(slug="erp")
    token = source.issue_token()
    await source.asave()
    headers = {
        "authorization": f"Bearer {token}",
        "x-automate-event": "order.synced",
        "idempotency-key": "k1",
    }
    response = await client.post("/hooks/erp/", json={"type": "ignored"}, headers=headers)
    assert response.status_code == 202
    assert await events() == [("order.synced", "k1")]


async def test_a_source_can_refuse_the_body_only_form(client: httpx.AsyncClient) -> None:
    from automate_core.models import WebhookSource

    await WebhookSource.objects.filter(slug="test").aupdate(config={"signature": {"require_timestamp": True}})
    body = json.dumps({"type": "t"}).encode()
    refused = await post_webhook(client, "test", body)
    assert (refused.status_code, refused.json()["error"]) == (401, "missing_timestamp")
    accepted = await client.post("/hooks/test/", content=body, headers=timestamped(body))
    assert accepted.status_code == 202


async def test_a_late_replay_of_the_timestamped_form_is_refused(client: httpx.AsyncClient) -> None:
    body = json.dumps({"type": "t"}).encode()
    stale = {
        "content-type": "application/json",
        **hmac_sha256_headers(SECRET.encode(), body, int(time.time()) - 301),
    }
    response = await client.post("/hooks/test/", content=body, headers=stale)
    assert (response.status_code, response.json()["error"]) == (401, "timestamp_out_of_tolerance")
    assert await events() == []


# --- the shortest secret ------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [" ", "x", "short-secret", "fifteen-bytes!!"])
def test_loading_a_source_with_a_short_secret_is_refused(
    secret: str, load: Callable[[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from automate_core.definitions import DefinitionError

    monkeypatch.setenv("AUTOMATE_SECRET_WEAK", secret)
    with pytest.raises(DefinitionError, match="secret env:WEAK: The signing secret is") as caught:
        load({"sources": [{"slug": "weak", "scheme": "hmac_sha256", "secret_ref": "env:WEAK"}]})
    assert "needs at least 16" in str(caught.value)
    if secret.strip():
        assert secret not in str(caught.value)


def test_a_secret_not_resolvable_at_load_time_is_checked_when_used(
    load: Callable[[dict[str, Any]], Any],
) -> None:
    load({"sources": [{"slug": "later", "scheme": "hmac_sha256", "secret_ref": "env:SET_LATER"}]})


async def test_a_short_secret_at_verification_is_refused_with_a_clear_log(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Changed in the backend after the source was saved: the sender gets 401, the log says why."""
    monkeypatch.setenv("AUTOMATE_SECRET_TEST_HOOK", " ")
    with caplog.at_level(logging.ERROR, "automate.ingest"):
        response = await post_webhook(client, "test", {"type": "t"}, secret=" ")
    assert (response.status_code, response.json()["error"]) == (401, "no_secret_configured")
    # (earlier tests registered weak secrets such as "short-secret": their pieces are masked too)
    assert "env:TEST_HOOK is not usable" in caplog.text and "needs at least 16" in caplog.text
    assert await events() == []
