"""``http``: calls an HTTP API with httpx (async), with SSRF protection on by default.

Actions: ``request`` (``method`` param), or ``get``/``post``/``put``/``patch``/``delete``.
Params: ``url``, ``headers``, ``json`` or ``data`` (form), ``params`` (query), ``timeout`` (s).
Returns ``{"status", "headers", "body"}`` (``body`` is parsed JSON when the answer is JSON).
Answers 5xx and 429 raise a retryable :class:`ConnectorError` (honouring ``Retry-After``);
other 4xx answers are not retryable. Redirects are not followed.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError, ConnectorTimeout
from automate_connectors.ssrf import check_destination
from automate_core.exceptions import UnknownActionError

_METHODS = ("get", "post", "put", "patch", "delete")
MAX_RESPONSE_BYTES = 1024 * 1024


def _allowed_hosts() -> list[str]:
    try:
        from django.conf import settings

        return list(getattr(settings, "AUTOMATE_HTTP_ALLOWED_HOSTS", []) or [])
    except Exception:
        return []


class HttpConnector(ConnectorAdapter):
    code = "http"
    name = "HTTP request"
    actions: ClassVar[tuple[str, ...]] = ("request", *_METHODS)
    supports_dry_run = True

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        if action == "request":
            method = str(params.get("method", "GET")).upper()
        elif action in _METHODS:
            method = action.upper()
        else:
            raise UnknownActionError(f"http has no action {action!r}; use request or {', '.join(_METHODS)}.")
        url = params.get("url")
        if not isinstance(url, str) or not url:
            raise ConnectorError("http needs a 'url' parameter.", retryable=False)
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConnectorError(f"http only calls http(s) URLs with a host, not {url!r}.", retryable=False)
        if context.get("dry_run"):
            return {"dry_run": True, "method": method, "url": url, "json": params.get("json")}
        port = parts.port or (443 if parts.scheme == "https" else 80)
        await check_destination(parts.hostname, port, _allowed_hosts())
        timeout = float(params.get("timeout", 30.0))
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = await client.request(
                    method,
                    url,
                    headers=params.get("headers"),
                    json=params.get("json"),
                    data=params.get("data"),
                    params=params.get("params"),
                )
        except httpx.TimeoutException as exc:
            raise ConnectorTimeout(f"{method} {url} timed out after {timeout:g}s.") from exc
        except httpx.HTTPError as exc:
            raise ConnectorError(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
        return self._result(method, url, response)

    @staticmethod
    def _result(method: str, url: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status >= 400:
            retry_after = response.headers.get("retry-after")
            raise ConnectorError(
                f"{method} {url} answered {status}.",
                retryable=status >= 500 or status == 429,
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
                status_code=status,
            )
        body: Any = response.content[:MAX_RESPONSE_BYTES].decode(response.encoding or "utf-8", "replace")
        if "json" in response.headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                body = response.json()
        return {"status": status, "headers": dict(response.headers), "body": body}
