"""``webhook``: outgoing webhooks signed in the Standard Webhooks format (standardwebhooks.com).

Action ``send``. Params: ``url``, ``payload`` (JSON; sent as the body), ``secret`` (the signing
secret: ``whsec_<base64>`` as Standard Webhooks issues them, or any other string, used as UTF-8
bytes), optionally ``id``, ``headers``, ``timeout`` (default 30 s).

Headers sent: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``). The id defaults to one derived from
the event, workflow, step and item, so every retry and resume of a delivery carries the same id
and receivers can drop duplicates; ``Idempotency-Key`` (the webhook-id; ``idempotency_key``
overrides it, ``false`` leaves it out) and ``X-Automate-Attempt`` are sent too, as by ``http``.
The destination is SSRF-guarded like the ``http`` connector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

import httpx

from automate_connectors import httpclient, idempotency
from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_connectors.calls import check_call
from automate_connectors.http import check_url
from automate_core.observability import tracing

_PARAMS = {"url", "payload", "secret", "id", "headers", "timeout", "idempotency_key"}
TOLERANCE_SECONDS = 300


def secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ConnectorError("webhook: the whsec_ secret is not valid base64.", retryable=False) from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """Whether a delivery's headers carry a valid, fresh signature (for receivers and tests)."""
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not ts.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(ts)) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, msg_id, int(ts), body).split(",", 1)[1]
    for candidate in headers.get("webhook-signature", "").split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def delivery_id(context: dict) -> str:
    """``msg_`` and the call's idempotency key: the same for every retry and resume of one event,
    workflow, step and item (see :mod:`automate_connectors.idempotency`)."""
    return "msg_" + idempotency.key(context).removeprefix("auto_")[:26]


class WebhookConnector(ConnectorAdapter):
    code = "webhook"
    name = "Outgoing webhook (Standard Webhooks)"
    actions: ClassVar[tuple[str, ...]] = ("send",)
    supports_dry_run = True

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        check_call("webhook", action, "send", params, _PARAMS)
        url = check_url(params.get("url"), "webhook")
        secret = params.get("secret")
        if not isinstance(secret, str) or not secret:
            raise ConnectorError("webhook: needs a signing 'secret'.", retryable=False)
        msg_id = str(params.get("id") or delivery_id(context))
        body = json.dumps(params.get("payload"), separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(time.time())
        override = params.get("idempotency_key", msg_id)  # by default the webhook-id itself
        headers = {
            **idempotency.merged(
                {**tracing.outgoing_headers(), **idempotency.headers(context, override, "webhook")},
                dict(params.get("headers") or {}),
            ),
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body),
        }
        if context.get("dry_run"):
            return {"dry_run": True, "id": msg_id, "url": url}
        timeout = float(params.get("timeout", 30.0))
        what = f"webhook {msg_id} to {url}"
        try:
            async with httpclient.guarded_client(timeout=timeout) as client:  # pooled connections
                response = await client.post(url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise httpclient.transport_error(exc, what, timeout) from exc
        httpclient.raise_for_status(response, what)
        return {"status": response.status_code, "id": msg_id, "body": httpclient.body_of(response)}
