"""``slack``: messages to Slack, through an incoming webhook or the Web API's ``chat.postMessage``.

Actions:

* ``webhook``: params ``url`` (the incoming-webhook URL, keep it in a secret), ``text``, and
  optionally ``blocks``, ``attachments``, ``thread_ts``, ``username``, ``icon_emoji``.
* ``post_message``: params ``token`` (a bot token, ``{{ secret("SLACK_BOT_TOKEN") }}``),
  ``channel``, ``text`` and optionally ``blocks``, ``attachments``, ``thread_ts``, ``mrkdwn``,
  ``unfurl_links``. Calls ``<AUTOMATE_SLACK_API_URL>/chat.postMessage``; returns
  ``{"ok", "channel", "ts"}``.

Both actions take ``timeout`` (seconds, default 10). Slack reports most API failures as
``200 {"ok": false, "error": "<code>"}``; those codes are classified: rate limits (429 with
``Retry-After``), Slack-side failures and timeouts are retryable; bad tokens, missing scopes,
unknown channels and invalid payloads are not.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from automate_connectors import httpclient
from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError, UnknownActionError
from automate_connectors.http import check_url
from automate_core import masking
from automate_core.conf import settings

_MESSAGE_FIELDS = ("text", "blocks", "attachments", "thread_ts", "mrkdwn", "unfurl_links", "username",
                   "icon_emoji", "icon_url", "reply_broadcast")  # fmt: skip
_RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


def _message(params: dict) -> dict[str, Any]:
    body = {k: params[k] for k in _MESSAGE_FIELDS if params.get(k) is not None}
    if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
        raise ConnectorError("slack: give 'text' (or 'blocks').", retryable=False)
    return body


class SlackConnector(ConnectorAdapter):
    code = "slack"
    name = "Slack message"
    actions: ClassVar[tuple[str, ...]] = ("webhook", "post_message")
    supports_dry_run = True

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        if action == "webhook":
            return await self._webhook(params, context)
        if action == "post_message":
            return await self._post_message(params, context)
        raise UnknownActionError(f"slack has no action {action!r}; use webhook or post_message.")

    async def _webhook(self, params: dict, context: dict) -> Any:
        url = check_url(params.get("url"), "slack webhook")
        body = _message(params)
        if context.get("dry_run"):
            return {"dry_run": True, "message": body}
        response = await self._post(url, body, {}, "Slack webhook", params)
        if response.status_code >= 400:
            code = masking.masker.cut(response.text[:4096].strip(), 100)  # masked before it is cut
            raise ConnectorError(
                f"Slack webhook answered {response.status_code} ({code or 'no detail'}).",
                retryable=response.status_code >= 500 or response.status_code == 429,
                retry_after=httpclient.retry_after(response),
                status_code=response.status_code,
            )
        return {"ok": True}

    async def _post_message(self, params: dict, context: dict) -> Any:
        token, channel = params.get("token"), params.get("channel")
        if not isinstance(token, str) or not token:
            raise ConnectorError("slack: post_message needs a 'token' (a bot token secret).", retryable=False)
        if not isinstance(channel, str) or not channel:
            raise ConnectorError("slack: post_message needs a 'channel'.", retryable=False)
        body = {"channel": channel, **_message(params)}
        if context.get("dry_run"):
            return {"dry_run": True, "message": body}
        url = str(settings.SLACK_API_URL).rstrip("/") + "/chat.postMessage"
        headers = {"Authorization": f"Bearer {token}"}
        response = await self._post(url, body, headers, "Slack chat.postMessage", params)
        if response.status_code == 429 or response.status_code >= 500:
            httpclient.raise_for_status(response, "Slack chat.postMessage")
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400 or not data.get("ok"):
            error = str(data.get("error") or f"HTTP {response.status_code}")
            raise ConnectorError(
                f"Slack chat.postMessage failed: {error}.",
                retryable=error in _RETRYABLE,
                retry_after=httpclient.retry_after(response),
                status_code=response.status_code,
            )
        return {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}

    @staticmethod
    async def _post(url: str, body: dict, headers: dict[str, str], what: str, params: dict) -> httpx.Response:
        timeout = float(params.get("timeout", 10.0))
        try:
            async with httpclient.guarded_client(timeout=timeout) as client:
                return await client.post(
                    url, json=body, headers={"Content-Type": "application/json; charset=utf-8", **headers}
                )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise httpclient.transport_error(exc, what, timeout) from exc
