"""``acme_tickets``: open tickets and add comments in the Acme Helpdesk API (async).

Actions:

* ``create_ticket``: params ``base_url``, ``token``, ``title``, optional ``body``, ``priority``
  (``low``/``normal``/``high``). Returns ``{"id", "url"}``.
* ``add_comment``: params ``base_url``, ``token``, ``ticket``, ``text``. Returns ``{"id"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from automate_connectors.adapters.base import (
    ConnectorAdapter,
    ConnectorConfigError,
    ConnectorError,
    UnknownActionError,
)
from automate_connectors.httpclient import guarded_client, raise_for_status, transport_error

PRIORITIES = ("low", "normal", "high")


class AcmeTicketsConnector(ConnectorAdapter):
    code = "acme_tickets"
    name = "Acme Helpdesk tickets"
    actions: ClassVar[tuple[str, ...]] = ("create_ticket", "add_comment")

    def validate_config(self, config: dict) -> None:
        priority = config.get("default_priority", "normal")
        if priority not in PRIORITIES:
            raise ConnectorConfigError(f"acme_tickets: default_priority must be one of {PRIORITIES}.")

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        if action == "create_ticket":
            title = params.get("title")
            if not isinstance(title, str) or not title:
                raise ConnectorError("acme_tickets: create_ticket needs a 'title'.", retryable=False)
            priority = params.get("priority", "normal")
            if priority not in PRIORITIES:
                raise ConnectorError(f"acme_tickets: priority must be one of {PRIORITIES}.", retryable=False)
            body = {"title": title, "body": params.get("body", ""), "priority": priority}
            data = await self._post(params, "/tickets", body, context)
            return {"id": data["id"], "url": data.get("url", "")}
        if action == "add_comment":
            if not params.get("ticket") or not params.get("text"):
                raise ConnectorError("acme_tickets: add_comment needs 'ticket' and 'text'.", retryable=False)
            data = await self._post(
                params, f"/tickets/{params['ticket']}/comments", {"text": params["text"]}, context
            )
            return {"id": data["id"]}
        raise UnknownActionError(f"acme_tickets has no action {action!r}.")

    @staticmethod
    async def _post(params: dict, path: str, body: dict, context: dict) -> Any:
        base_url, token = params.get("base_url"), params.get("token")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConnectorError("acme_tickets: 'base_url' must be an http(s) URL.", retryable=False)
        if not isinstance(token, str) or not token:
            raise ConnectorError("acme_tickets: 'token' is required.", retryable=False)
        url = base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"{context.get('trace_id')}-{path}"}
        try:
            async with guarded_client(timeout=10.0) as client:  # SSRF-checked, like the built-ins
                response = await client.post(url, json=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise transport_error(exc, f"POST {url}", 10.0) from exc
        raise_for_status(response, f"POST {url}")
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError("acme_tickets: the API did not answer JSON.") from exc
