"""``http``: calls an HTTP API with httpx (async), with SSRF protection on by default.

Actions: ``request`` (with a ``method`` param), or ``get``/``post``/``put``/``patch``/``delete``.

Params: ``url`` (required, http or https), ``headers``, ``json`` (a JSON body) or ``data`` (a form
body, a mapping) or ``content`` (a raw string body), ``params`` (query), ``timeout`` (seconds,
default 30), ``follow_redirects`` (default false; every hop is checked like the first, and the
step's headers are dropped once a redirect leaves the URL's origin), ``idempotency_key`` (default:
a key stable across every retry and resume of the event, workflow, step and item; ``false`` sends
none; see :mod:`automate_connectors.idempotency`).

Headers sent besides the step's: ``Idempotency-Key`` and ``X-Automate-Attempt``.

Returns ``{"status", "headers", "body"}`` (``body`` is parsed JSON when the answer is JSON, text
otherwise, at most 1 MiB). 5xx, 408 and 429 answers raise a retryable :class:`ConnectorError`
(honouring ``Retry-After``); other 4xx answers are not retryable. Private, loopback, link-local
and metadata addresses are refused (see :mod:`automate_connectors.ssrf`).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from automate_connectors import httpclient, idempotency
from automate_connectors.adapters.base import ConnectorAdapter, ConnectorConfigError, ConnectorError
from automate_connectors.calls import check_params
from automate_core import masking
from automate_core.exceptions import UnknownActionError
from automate_core.observability import tracing

_METHODS = ("get", "post", "put", "patch", "delete")
_ALL_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_PARAMS = {
    "method", "url", "headers", "json", "data", "content", "params", "timeout", "follow_redirects",
    "idempotency_key",
}  # fmt: skip


def check_url(url: Any, what: str = "http") -> str:
    """``url`` if it is an absolute http(s) URL with a host, else a non-retryable error."""
    if not isinstance(url, str) or not url:
        raise ConnectorError(f"{what} needs a 'url' parameter (an http or https URL).", retryable=False)
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConnectorError(f"{what} only calls http(s) URLs with a host, not {url!r}.", retryable=False)
    return url


class HttpConnector(ConnectorAdapter):
    code = "http"
    name = "HTTP request"
    actions: ClassVar[tuple[str, ...]] = ("request", *_METHODS)
    supports_dry_run = True

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport

    def validate_config(self, config: dict) -> None:
        unknown = set(config) - {"timeout", "follow_redirects"}
        if unknown:
            raise ConnectorConfigError(
                f"http has no settings {sorted(unknown)}; it knows timeout and follow_redirects."
            )
        timeout = config.get("timeout", 30)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ConnectorConfigError("http: timeout must be a positive number of seconds.")

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        method = self._method(action, params)
        check_params("http", params, _PARAMS)
        url = check_url(params.get("url"))
        bodies = [k for k in ("json", "data", "content") if params.get(k) is not None]
        if len(bodies) > 1:
            raise ConnectorError(f"http: give one body, not {' and '.join(bodies)}.", retryable=False)
        if context.get("dry_run"):
            return {"dry_run": True, "method": method, "url": url, "json": params.get("json")}
        timeout = params.get("timeout", 30.0)
        self.validate_config({"timeout": timeout})
        what = f"{method} {url}"
        supplied = params.get("headers") or {}
        if not isinstance(supplied, dict):
            raise ConnectorError("http: 'headers' must be a mapping of names to values.", retryable=False)
        defaults = {
            **tracing.outgoing_headers(),
            **idempotency.headers(context, params.get("idempotency_key")),
        }
        try:
            async with httpclient.guarded_client(timeout=float(timeout), transport=self._transport) as client:
                response = await httpclient.request(
                    client,
                    method,
                    url,
                    headers=idempotency.merged(defaults, supplied),
                    follow_redirects=bool(params.get("follow_redirects", False)),
                    origin_only=list(supplied),
                    json=params.get("json"),
                    data=params.get("data"),
                    content=params.get("content"),
                    params=params.get("params"),
                )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise httpclient.transport_error(exc, what, float(timeout)) from exc
        httpclient.raise_for_status(response, what)
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": httpclient.body_of(response),
        }

    @staticmethod
    def _method(action: str, params: dict) -> str:
        if action == "request":
            method = str(params.get("method", "GET")).upper()
            if method not in _ALL_METHODS:
                raise ConnectorError(  # masked: a template can put anything here, a secret too
                    f"http: unsupported method {masking.masker.mask(method)!r}; use one of "
                    f"{', '.join(sorted(_ALL_METHODS))}.",
                    retryable=False,
                )
            return method
        if action in _METHODS:
            return action.upper()
        raise UnknownActionError(f"http has no action {action!r}; use request or {', '.join(_METHODS)}.")
