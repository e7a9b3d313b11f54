"""Outgoing calls carry a key a receiver can drop repeats by, and the attempt number.

Against real servers on 127.0.0.1: the ``http`` and ``webhook`` connectors send the same
``Idempotency-Key`` for every retry and resume of one event, workflow, step and item, a different
one for anything else, ``X-Automate-Attempt`` with the attempt, and let a step override both.
The webhook's signature is checked with the ``standardwebhooks`` reference library.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks

from automate_connectors import webhook
from automate_connectors.http import HttpConnector
from automate_connectors.webhook import WebhookConnector
from automate_core.exceptions import ConnectorError
from tests.plugins.servers import FakeServer

CTX: dict[str, Any] = {
    "run_id": 1, "workflow": "orders", "step": "notify", "event_id": 41, "trace_id": "t-1",
    "attempt": 1, "dry_run": False,
}  # fmt: skip
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


async def post(server: FakeServer, context: dict[str, Any], **params: Any) -> dict[str, str]:
    server.reply("POST", "/in", 200, {"ok": True})
    await HttpConnector().aexecute("post", {"url": server.url + "/in", "json": {}, **params}, context)
    return server.requests[-1].headers


async def test_every_retry_and_resume_of_one_call_carries_one_key(server: FakeServer) -> None:
    first = await post(server, CTX)
    retried = await post(server, {**CTX, "attempt": 2, "run_id": 2, "trace_id": "t-2"})  # a resume
    assert first["idempotency-key"] == retried["idempotency-key"]
    assert first["idempotency-key"].startswith("auto_") and len(first["idempotency-key"]) == 37
    assert (first["x-automate-attempt"], retried["x-automate-attempt"]) == ("1", "2")


@pytest.mark.parametrize(
    "change",
    [{"event_id": 42}, {"workflow": "refunds"}, {"step": "notify_again"}, {"item": 0}, {"item": "sku-9"}],
)
async def test_another_event_workflow_step_or_item_gets_another_key(
    server: FakeServer, change: dict[str, Any]
) -> None:
    base = await post(server, {**CTX, "item": 1} if "item" in change else CTX)
    other = await post(server, {**CTX, **change})
    assert base["idempotency-key"] != other["idempotency-key"]


async def test_items_of_one_step_get_distinct_stable_keys(server: FakeServer) -> None:
    keys = [(await post(server, {**CTX, "item": i}))["idempotency-key"] for i in (0, 1, 2, 0)]
    assert len(set(keys[:3])) == 3 and keys[3] == keys[0]


async def test_a_step_overrides_or_turns_off_the_key(server: FakeServer) -> None:
    assert (await post(server, CTX, idempotency_key="order-7"))["idempotency-key"] == "order-7"
    off = await post(server, CTX, idempotency_key=False)
    assert "idempotency-key" not in off and "x-automate-attempt" not in off
    own = await post(server, CTX, headers={"idempotency-key": "mine"})
    assert own["idempotency-key"] == "mine" and own["x-automate-attempt"] == "1"


@pytest.mark.parametrize("bad", ["", "  ", [], {"a": 1}, 1.5])
async def test_a_bad_override_is_a_permanent_error(server: FakeServer, bad: Any) -> None:
    with pytest.raises(ConnectorError, match="idempotency_key") as caught:
        await post(server, CTX, idempotency_key=bad)
    assert not caught.value.retryable


async def test_the_webhook_id_is_the_idempotency_key_and_survives_retries(server: FakeServer) -> None:
    server.reply("POST", "/in", 200, {"ok": True})
    params = {"url": server.url + "/in", "payload": {"a": 1}, "secret": WHSEC}
    for context in (CTX, {**CTX, "attempt": 3, "trace_id": "t-9", "run_id": 7}):
        await WebhookConnector().aexecute("send", params, context)
    first, again = (r.headers for r in server.requests)
    assert first["webhook-id"] == again["webhook-id"] == first["idempotency-key"] == again["idempotency-key"]
    assert again["x-automate-attempt"] == "3"
    await WebhookConnector().aexecute("send", params, {**CTX, "item": 4})
    assert server.requests[-1].headers["webhook-id"] != first["webhook-id"]


@pytest.mark.parametrize("payload", [{"type": "order.paid", "data": {"id": 7}}, ["é", 1, None], "text"])
async def test_the_reference_library_verifies_the_webhooks_we_send(server: FakeServer, payload: Any) -> None:
    """Not our own verifier: ``standardwebhooks`` (the specification's library) checks the delivery."""
    server.reply("POST", "/in", 200, {"ok": True})
    await WebhookConnector().aexecute(
        "send", {"url": server.url + "/in", "payload": payload, "secret": WHSEC}, CTX
    )
    req = server.requests[0]
    assert standardwebhooks.Webhook(WHSEC).verify(req.body, req.headers) == payload
    tampered = json.dumps({"tampered": True}).encode()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(WHSEC).verify(tampered, req.headers)
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret-00").decode()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other).verify(req.body, req.headers)


def test_our_verifier_accepts_what_the_reference_library_signs() -> None:
    body, now = b'{"a":1}', datetime.now(UTC)
    signature = standardwebhooks.Webhook(WHSEC).sign("msg_1", now, body.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert webhook.verify(WHSEC, headers, body)
    assert not webhook.verify(WHSEC, {**headers, "webhook-id": "msg_2"}, body)
