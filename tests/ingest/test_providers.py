"""Each provider end to end through POST /hooks/<slug>/: verified, deduplicated, typed, stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import standardwebhooks
import stripe
from slack_sdk.signature import SignatureVerifier

from automate_core.models import Event, OutboxJob, WebhookSource

WHSEC = "whsec_" + base64.b64encode(b"provider-test-key-standard-hooks").decode()
SECRETS = {
    "STANDARD": WHSEC,
    "STRIPE": "whsec_stripe_provider_test",
    "GITHUB": "github-provider-test",
    "SLACK": "slack-provider-test",
    "SHOPIFY": "shopify-provider-test",
}

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture(autouse=True)
def provider_sources(
    live_db: None, load: Callable[[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"AUTOMATE_SECRET_{name}", value)
    load(
        {
            "sources": [
                {"slug": "std", "scheme": "standard_webhooks", "secret_ref": "env:STANDARD"},
                {"slug": "stripe", "scheme": "stripe", "secret_ref": "env:OLD_STRIPE, env:STRIPE"},
                {"slug": "github", "scheme": "github", "secret_ref": "env:GITHUB"},
                {"slug": "slack", "scheme": "slack", "secret_ref": "env:SLACK"},
                {"slug": "shopify", "scheme": "shopify", "secret_ref": "env:SHOPIFY"},
            ]
        }
    )


async def counts() -> tuple[int, int]:
    return await Event.objects.acount(), await OutboxJob.objects.acount()


async def post(client: httpx.AsyncClient, slug: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return await client.post(f"/hooks/{slug}/", content=body, headers=headers)


async def test_standard_webhooks_redelivery_is_recognised_by_webhook_id(client: httpx.AsyncClient) -> None:
    body = json.dumps({"type": "user.created", "data": {"id": 1}})
    now = datetime.now(UTC)
    signature = standardwebhooks.Webhook(WHSEC).sign("msg_42", now, body)
    headers = {
        "webhook-id": "msg_42",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    first = await post(client, "std", body.encode(), headers)
    assert first.status_code == 202, first.text
    again = await post(client, "std", body.encode(), headers)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "duplicate"}
    event = await Event.objects.aget(pk=first.json()["event_id"])
    assert (event.event_type, event.idempotency_key) == ("user.created", "msg_42")
    assert await counts() == (1, 1)


async def test_stripe_event_id_dedupes_and_rotated_secret_verifies(client: httpx.AsyncClient) -> None:
    body = json.dumps({"id": "evt_9", "object": "event", "type": "charge.succeeded"})
    header = stripe.WebhookSignature.generate_signature_header(body, SECRETS["STRIPE"])
    first = await post(client, "stripe", body.encode(), {"stripe-signature": header})
    assert first.status_code == 202, first.text
    # Stripe retries the same event later, signed again with a new timestamp
    header = stripe.WebhookSignature.generate_signature_header(body, SECRETS["STRIPE"], int(time.time()) + 5)
    again = await post(client, "stripe", body.encode(), {"stripe-signature": header})
    assert (again.status_code, again.json()["event_id"]) == (200, first.json()["event_id"])
    event = await Event.objects.aget(pk=first.json()["event_id"])
    assert (event.event_type, event.idempotency_key) == ("charge.succeeded", "evt_9")
    assert await counts() == (1, 1)


async def test_stripe_old_timestamp_is_refused_and_counted(client: httpx.AsyncClient) -> None:
    from automate_core.observability import metrics

    counter = metrics.webhooks_rejected.labels("stripe", "timestamp_out_of_tolerance")
    before = counter._value.get()
    body = json.dumps({"id": "evt_old", "type": "x"})
    header = stripe.WebhookSignature.generate_signature_header(
        body, SECRETS["STRIPE"], int(time.time()) - 3600
    )
    response = await post(client, "stripe", body.encode(), {"stripe-signature": header})
    assert (response.status_code, response.json()["error"]) == (401, "timestamp_out_of_tolerance")
    assert SECRETS["STRIPE"] not in response.text
    assert counter._value.get() == before + 1
    assert await counts() == (0, 0)


def github_headers(body: bytes, delivery: str = "d-1", event: str = "push") -> dict[str, str]:
    digest = hmac.new(SECRETS["GITHUB"].encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "x-github-delivery": delivery, "x-github-event": event}


async def test_github_json_and_form_deliveries(client: httpx.AsyncClient) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    response = await post(client, "github", body, github_headers(body))
    assert response.status_code == 202, response.text
    form = urlencode({"payload": json.dumps({"action": "opened", "number": 5})}).encode()
    response = await post(
        client,
        "github",
        form,
        {"content-type": "application/x-www-form-urlencoded", **github_headers(form, "d-2", "pull_request")},
    )
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert (event.event_type, event.payload, event.idempotency_key) == (
        "pull_request",
        {"action": "opened", "number": 5},
        "d-2",
    )


def slack_headers(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRETS["SLACK"]).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"x-slack-request-timestamp": ts, "x-slack-signature": signature}


async def test_slack_events_interactivity_commands_and_url_verification(client: httpx.AsyncClient) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "3eZbrw1a"}).encode()
    response = await post(client, "slack", challenge, slack_headers(challenge))
    assert (response.status_code, response.json()) == (200, {"challenge": "3eZbrw1a"})
    assert await counts() == (0, 0)

    event = json.dumps(
        {"type": "event_callback", "event_id": "Ev9", "event": {"type": "app_mention"}}
    ).encode()
    first = await post(client, "slack", event, slack_headers(event))
    retry = await post(client, "slack", event, {**slack_headers(event), "x-slack-retry-num": "1"})
    assert (first.status_code, retry.status_code) == (202, 200)

    form_headers = {"content-type": "application/x-www-form-urlencoded"}
    action = urlencode({"payload": json.dumps({"type": "block_actions", "trigger_id": "t1"})}).encode()
    response = await post(client, "slack", action, {**form_headers, **slack_headers(action)})
    assert response.status_code == 202, response.text
    command = urlencode({"command": "/deploy", "text": "prod"}).encode()
    response = await post(client, "slack", command, {**form_headers, **slack_headers(command)})
    stored = await Event.objects.aget(pk=response.json()["event_id"])
    assert (stored.event_type, stored.payload) == ("slash_command", {"command": "/deploy", "text": "prod"})
    types = [e.event_type async for e in Event.objects.order_by("id")]
    assert types == ["app_mention", "block_actions", "slash_command"]


async def test_form_bodies_are_415_where_the_scheme_does_not_expect_them(client: httpx.AsyncClient) -> None:
    form = b"a=1"
    digest = base64.b64encode(hmac.new(SECRETS["SHOPIFY"].encode(), form, hashlib.sha256).digest()).decode()
    response = await post(
        client,
        "shopify",
        form,
        {"content-type": "application/x-www-form-urlencoded", "x-shopify-hmac-sha256": digest},
    )
    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")


async def test_shopify_topic_and_webhook_id(client: httpx.AsyncClient) -> None:
    body = json.dumps({"id": 820982911946154508}).encode()
    digest = base64.b64encode(hmac.new(SECRETS["SHOPIFY"].encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "x-shopify-hmac-sha256": digest,
        "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": "w-1",
    }
    response = await post(client, "shopify", body, headers)
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert (event.event_type, event.idempotency_key) == ("orders/create", "w-1")


async def test_configured_header_and_json_path_override_the_scheme(client: httpx.AsyncClient) -> None:
    await WebhookSource.objects.filter(slug="github").aupdate(
        config={"event_type_path": "meta.kind", "idempotency_path": "meta.uid"}
    )
    body = json.dumps({"meta": {"kind": "custom.kind", "uid": 77}}).encode()
    response = await post(client, "github", body, github_headers(body))
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert (event.event_type, event.idempotency_key) == ("custom.kind", "77")
    await WebhookSource.objects.filter(slug="github").aupdate(
        config={"event_type_header": "X-Kind", "idempotency_header": "X-Uid"}
    )
    response = await post(client, "github", body, {**github_headers(body), "x-kind": "k2", "x-uid": "u2"})
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert (event.event_type, event.idempotency_key) == ("k2", "u2")


async def test_a_missing_secret_is_refused_without_naming_values(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOMATE_SECRET_GITHUB")
    body = b"{}"
    response = await post(client, "github", body, github_headers(body))
    assert (response.status_code, response.json()["error"]) == (401, "no_secret_configured")
