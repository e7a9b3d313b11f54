"""slack (a real server speaking Slack's webhook and chat.postMessage), email (Django's locmem
backend) and webhook (Standard Webhooks signatures, checked the way a receiver checks them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from automate_connectors import webhook
from automate_connectors.email import EmailConnector
from automate_connectors.slack import SlackConnector
from automate_connectors.webhook import WebhookConnector
from automate_core.exceptions import ConnectorError
from tests.plugins.servers import FakeServer, Request

CTX: dict[str, Any] = {"run_id": 3, "workflow": "wf", "step": "notify", "trace_id": "abc", "dry_run": False}


# --- slack ------------------------------------------------------------------------------------


def post_message(req: Request) -> tuple[int, dict[str, str], Any]:
    if req.headers.get("authorization") != "Bearer xoxb-good":
        return 200, {}, {"ok": False, "error": "invalid_auth"}
    body = req.json()
    if body["channel"] == "#nowhere":
        return 200, {}, {"ok": False, "error": "channel_not_found"}
    if body["channel"] == "#busy":
        return 429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"}
    return (
        200,
        {},
        {"ok": True, "channel": "C123", "ts": "1700000000.000100", "message": {"text": body["text"]}},
    )


@pytest.fixture
def slack_api(server: FakeServer, settings: Any) -> FakeServer:
    settings.AUTOMATE_SLACK_API_URL = server.url + "/api"
    server.route("POST", "/api/chat.postMessage", post_message)
    return server


async def test_slack_post_message(slack_api: FakeServer) -> None:
    params = {"token": "xoxb-good", "channel": "#ops", "text": "deploy done", "thread_ts": "1.2"}
    out = await SlackConnector().aexecute("post_message", params, CTX)
    assert out == {"ok": True, "channel": "C123", "ts": "1700000000.000100"}
    assert slack_api.requests[0].json() == {"channel": "#ops", "text": "deploy done", "thread_ts": "1.2"}
    assert slack_api.requests[0].headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("token", "channel", "match", "retryable", "retry_after"),
    [("xoxb-bad", "#ops", "invalid_auth", False, None),
     ("xoxb-good", "#nowhere", "channel_not_found", False, None),
     ("xoxb-good", "#busy", "429", True, 30.0)],
)  # fmt: skip
async def test_slack_api_errors(
    slack_api: FakeServer, token: str, channel: str, match: str, retryable: bool, retry_after: float | None
) -> None:
    with pytest.raises(ConnectorError, match=match) as caught:
        await SlackConnector().aexecute(
            "post_message", {"token": token, "channel": channel, "text": "x"}, CTX
        )
    assert caught.value.retryable is retryable and caught.value.retry_after == retry_after
    assert "xoxb" not in str(caught.value)


async def test_slack_incoming_webhook(server: FakeServer) -> None:
    server.reply("POST", "/services/T/B/X", 200, "ok")
    hook = {"url": server.url + "/services/T/B/X", "text": "hi"}
    out = await SlackConnector().aexecute(
        "webhook", {"url": server.url + "/services/T/B/X", "text": "hi"}, CTX
    )
    assert out == {"ok": True} and server.requests[0].json() == {"text": "hi"}
    server.reply("POST", "/services/T/B/X", 404, "no_service")
    with pytest.raises(ConnectorError, match="no_service") as caught:
        await SlackConnector().aexecute("webhook", hook, CTX)
    assert not caught.value.retryable
    server.reply("POST", "/services/T/B/X", 503, "busy")
    with pytest.raises(ConnectorError) as caught:
        await SlackConnector().aexecute("webhook", hook, CTX)
    assert caught.value.retryable


async def test_slack_needs_text(server: FakeServer) -> None:
    with pytest.raises(ConnectorError, match="give 'text'"):
        await SlackConnector().aexecute("webhook", {"url": server.url + "/x"}, CTX)
    assert server.requests == []


# --- email ------------------------------------------------------------------------------------


async def test_email_goes_through_djangos_backend(settings: Any) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    mail.outbox = []
    params = {"to": ["ops@example.com"], "subject": "Order 7", "body": "shipped", "html": "<b>shipped</b>",
              "cc": "boss@example.com", "from_email": "bot@example.com"}  # fmt: skip
    out = await EmailConnector().aexecute("send", params, CTX)
    assert out["sent"] == 1 and out["to"] == ["ops@example.com"]
    sent = mail.outbox[0]
    assert (sent.subject, sent.body, sent.from_email, sent.cc) == ("Order 7", "shipped", "bot@example.com",
                                                                    ["boss@example.com"])  # fmt: skip
    assert isinstance(sent, EmailMultiAlternatives)
    assert sent.alternatives[0][0] == "<b>shipped</b>"
    assert sent.extra_headers["Message-ID"] == out["message_id"]


@pytest.mark.parametrize(
    "params",
    [{"to": "not-an-address", "subject": "s"}, {"to": "a@example.com", "subject": "two\nlines"},
     {"to": [], "subject": "s"}, {"to": "a@example.com", "subject": "s", "attachments": []}],
)  # fmt: skip
async def test_email_refuses_bad_input(settings: Any, params: dict[str, Any]) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    mail.outbox = []
    with pytest.raises(ConnectorError) as caught:
        await EmailConnector().aexecute("send", params, CTX)
    assert not caught.value.retryable and mail.outbox == []


async def test_email_smtp_down_is_retryable(settings: Any) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 1},
        }
    }
    with pytest.raises(ConnectorError) as caught:
        await EmailConnector().aexecute("send", {"to": "a@example.com", "subject": "s", "body": "b"}, CTX)
    assert caught.value.retryable


# --- webhook ----------------------------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


async def test_webhook_is_signed_in_the_standard_webhooks_format(server: FakeServer) -> None:
    server.reply("POST", "/in", 200, {"received": True})
    params = {
        "url": server.url + "/in",
        "payload": {"type": "order.paid", "data": {"id": 7}},
        "secret": SECRET,
    }
    out = await WebhookConnector().aexecute("send", params, CTX)
    req = server.requests[0]
    assert out["status"] == 200 and out["id"] == req.headers["webhook-id"]
    # what a receiver does, from the specification: HMAC-SHA256 over "id.timestamp.body"
    signed = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + req.body
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert req.headers["webhook-signature"] == f"v1,{expected}"
    assert webhook.verify(SECRET, req.headers, req.body)
    assert not webhook.verify(SECRET, req.headers, req.body + b" ")
    assert not webhook.verify(SECRET, req.headers, req.body, now=int(req.headers["webhook-timestamp"]) + 600)


async def test_webhook_id_is_stable_across_retries(server: FakeServer) -> None:
    server.reply("POST", "/in", 500, "down")
    params = {"url": server.url + "/in", "payload": {}, "secret": "plain-secret"}
    for _ in range(2):
        with pytest.raises(ConnectorError) as caught:
            await WebhookConnector().aexecute("send", params, {**CTX, "run_id": 99})
        assert caught.value.retryable
    assert server.requests[0].headers["webhook-id"] == server.requests[1].headers["webhook-id"]


async def test_webhook_refuses_a_bad_secret() -> None:
    with pytest.raises(ConnectorError, match="not valid base64") as caught:
        await WebhookConnector().aexecute(
            "send", {"url": "http://x.test/", "payload": {}, "secret": "whsec_!!"}, CTX
        )
    assert not caught.value.retryable


async def test_slack_server_errors_and_timeouts_are_retryable(slack_api: FakeServer) -> None:
    params = {"token": "xoxb-good", "channel": "#ops", "text": "x", "timeout": 0.2}
    slack_api.reply("POST", "/api/chat.postMessage", 500, "oops")
    with pytest.raises(ConnectorError) as caught:
        await SlackConnector().aexecute("post_message", params, CTX)
    assert caught.value.retryable and caught.value.status_code == 500
    slack_api.delay = 1.0
    with pytest.raises(ConnectorError, match="timed out") as caught:
        await SlackConnector().aexecute("post_message", params, CTX)
    assert caught.value.retryable
